// memfd and mmap: shared memory as zero-copy external ArrayBuffers.
//
// A mapping is an external ArrayBuffer over mmap'd memory. unmap() munmaps it
// at once and detaches the buffer (every view then reads as empty); the
// buffer's finalizer is only a safety net for mappings nobody unmapped.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <signal.h>

#include <atomic>
#include <cerrno>
#include <mutex>

#include "common.h"

namespace qubes {
namespace {

// ---- SIGBUS guard ----
//
// A Wayland client can shrink the file behind a pool it shared with us; a
// read past the new end raises SIGBUS and would kill the whole process (the
// agent, and every app's windows with it). Mappings made with `guard` are
// listed here; the handler replaces a faulting guarded mapping with
// anonymous zero pages (so the interrupted read carries on and reads zeros)
// and marks it faulted, for the caller to end that client. This table is the
// addon's one piece of process-wide state: signal dispositions are
// process-wide themselves.
//
// 16384 slots (384 KiB, touched only as slots are used) is a quarter of the
// kernel's default vm.max_map_count, and 64 times a Wayland client's
// default pool limit, so that one client cannot use it up for the others.
constexpr size_t kGuardSlots = 16384;

struct GuardSlot {
  std::atomic<uintptr_t> start{0};
  std::atomic<size_t> length{0};
  std::atomic<int> faulted{0};
};

GuardSlot guardSlots[kGuardSlots];
// Where the search for a free slot starts: the slot after the last one
// taken, so that taking a slot is O(1) while the table has room.
std::atomic<size_t> guardSearchStart{0};
struct sigaction previousSigbus;
std::once_flag sigbusInstalled;

// What to do with a SIGBUS that is not a fault in a guarded mapping: what
// the previous disposition would have done.
void ChainSigbus(int signal, siginfo_t* info, void* context) {
  if (previousSigbus.sa_flags & SA_SIGINFO) {
    if (previousSigbus.sa_sigaction != nullptr) previousSigbus.sa_sigaction(signal, info, context);
    return;
  }
  if (previousSigbus.sa_handler == SIG_IGN) return;
  if (previousSigbus.sa_handler == SIG_DFL) {
    // The default is to die: do so, with the signal, as if we were not here.
    struct sigaction fallback {};
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    ::sigaction(SIGBUS, &fallback, nullptr);
    ::raise(SIGBUS);
    return;
  }
  previousSigbus.sa_handler(signal);
}

void OnSigbus(int signal, siginfo_t* info, void* context) {
  // Only a fault of the memory system (not a kill -BUS from a process) can
  // be a read past the end of a guarded file.
  if (info->si_code != BUS_ADRERR && info->si_code != BUS_OBJERR) {
    ChainSigbus(signal, info, context);
    return;
  }
  uintptr_t address = reinterpret_cast<uintptr_t>(info->si_addr);
  for (GuardSlot& slot : guardSlots) {
    uintptr_t start = slot.start.load(std::memory_order_acquire);
    size_t length = slot.length.load(std::memory_order_acquire);
    if (start == 0 || address < start || address >= start + length) continue;
    void* replaced = ::mmap(reinterpret_cast<void*>(start), length, PROT_READ | PROT_WRITE,
                            MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (replaced != MAP_FAILED) {
      slot.faulted.store(1, std::memory_order_release);
      return;
    }
    break;
  }
  ChainSigbus(signal, info, context);
}

void InstallSigbusHandler() {
  std::call_once(sigbusInstalled, [] {
    struct sigaction action {};
    action.sa_sigaction = OnSigbus;
    action.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGBUS, &action, &previousSigbus);
  });
}

// Lists a mapping in the guard table; -1 when the table is full (the mapping then has no guard).
int GuardMapping(void* address, size_t length) {
  InstallSigbusHandler();
  size_t first = guardSearchStart.load(std::memory_order_relaxed);
  for (size_t n = 0; n < kGuardSlots; n++) {
    size_t i = (first + n) % kGuardSlots;
    uintptr_t expected = 0;
    if (guardSlots[i].start.compare_exchange_strong(expected, reinterpret_cast<uintptr_t>(address))) {
      guardSlots[i].faulted.store(0, std::memory_order_relaxed);
      guardSlots[i].length.store(length, std::memory_order_release);
      guardSearchStart.store((i + 1) % kGuardSlots, std::memory_order_relaxed);
      return static_cast<int>(i);
    }
  }
  return -1;
}

void UnguardMapping(int slot) {
  if (slot < 0) return;
  guardSlots[slot].length.store(0, std::memory_order_release);
  guardSlots[slot].start.store(0, std::memory_order_release);
}

// The largest external ArrayBuffer Node 20 accepts (buffer.constants.MAX_LENGTH).
constexpr int64_t kMaxExternalLength = INT64_C(1) << 32;

// Tags every ArrayBuffer this addon created by mmap, so that unmap() can
// refuse any other buffer before trusting its wrapped pointer.
constexpr napi_type_tag kMappingTag = {0x7175626573676d61ULL, 0x6d617070696e6701ULL};

// One mmap'd range. Owned jointly by the ArrayBuffer's backing store (its
// finalizer) and the napi_wrap on the buffer object: freed when both let go.
// Mappings made by mmap() and not yet unmapped, and their bytes: what a
// leak check reads (memoryStats()).
std::atomic<int64_t> liveMappings{0};
std::atomic<int64_t> liveMappedBytes{0};

struct Mapping {
  void* address;
  size_t length;
  int guardSlot = -1;
  std::atomic<bool> mapped{true};
  std::atomic<int> owners{2};

  void Unmap() {
    bool expected = true;
    if (mapped.compare_exchange_strong(expected, false)) {
      UnguardMapping(guardSlot);
      ::munmap(address, length);
      liveMappings.fetch_sub(1, std::memory_order_relaxed);
      liveMappedBytes.fetch_sub(static_cast<int64_t>(length), std::memory_order_relaxed);
    }
  }
  void Release() {
    if (owners.fetch_sub(1) == 1) delete this;
  }
};

void FinalizeBackingStore(napi_env, void*, void* hint) {
  Mapping* mapping = static_cast<Mapping*>(hint);
  mapping->Unmap();
  mapping->Release();
}

void FinalizeWrap(napi_env, void* data, void*) { static_cast<Mapping*>(data)->Release(); }

Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  std::string name = ArgString(info, 0, "name");
  bool allowSealing = ArgBool(info, 1, "allowSealing", true);
  unsigned int flags = MFD_CLOEXEC | (allowSealing ? MFD_ALLOW_SEALING : 0);
  int fd = ::memfd_create(name.c_str(), flags);
  if (fd < 0) ThrowErrno(info.Env(), "memfd_create", errno);
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value Ftruncate(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  int64_t size = ArgInteger(info, 1, "size", 0, INT64_C(1) << 46);
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) ThrowErrno(info.Env(), "ftruncate", errno);
  return info.Env().Undefined();
}

Napi::Value FileSize(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  struct stat st;
  if (::fstat(fd, &st) != 0) ThrowErrno(info.Env(), "fstat", errno);
  return Napi::Number::New(info.Env(), static_cast<double>(st.st_size));
}

Napi::Value AddSeals(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  int seals = static_cast<int>(ArgInteger(info, 1, "seals", 0, 0xffff));
  if (::fcntl(fd, F_ADD_SEALS, seals) != 0) ThrowErrno(info.Env(), "fcntl", errno);
  return info.Env().Undefined();
}

Napi::Value GetSeals(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0) ThrowErrno(info.Env(), "fcntl", errno);
  return Napi::Number::New(info.Env(), seals);
}

// mmap(fd, offset, length, writable, populate, guard) -> ArrayBuffer
Napi::Value Mmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  int64_t offset = ArgInteger(info, 1, "offset", 0, INT64_C(1) << 46);
  // Node refuses external buffers over kMaxExternalLength: refuse them here, before mapping.
  int64_t length = ArgInteger(info, 2, "length", 1, kMaxExternalLength);
  bool writable = ArgBool(info, 3, "writable", false);
  bool populate = ArgBool(info, 4, "populate", false);
  bool guard = ArgBool(info, 5, "guard", false);
  if (offset % ::sysconf(_SC_PAGESIZE) != 0) ThrowRange(env, "offset must be a multiple of the page size");

  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  int flags = MAP_SHARED | (populate ? MAP_POPULATE : 0);
  void* address = ::mmap(nullptr, static_cast<size_t>(length), prot, flags, fd, static_cast<off_t>(offset));
  if (address == MAP_FAILED) ThrowErrno(env, "mmap", errno);

  Mapping* mapping = new Mapping{address, static_cast<size_t>(length)};
  liveMappings.fetch_add(1, std::memory_order_relaxed);
  liveMappedBytes.fetch_add(length, std::memory_order_relaxed);
  if (guard) {
    mapping->guardSlot = GuardMapping(address, mapping->length);
    if (mapping->guardSlot < 0) {
      // An unguarded mapping of another process's file could kill us: refuse it.
      ::munmap(address, mapping->length);
      liveMappings.fetch_sub(1, std::memory_order_relaxed);
      liveMappedBytes.fetch_sub(length, std::memory_order_relaxed);
      delete mapping;
      ThrowErrno(env, "mmap (SIGBUS guard table full)", ENOMEM);
    }
  }
  napi_value buffer;
  napi_status status = napi_create_external_arraybuffer(env, address, mapping->length,
                                                        FinalizeBackingStore, mapping, &buffer);
  if (status != napi_ok) {
    // Node may already have run (or may later run) the finalizer on this
    // path: unmap (idempotent) and leave the record to it rather than risk a
    // double free; report Node's own pending error when there is one.
    mapping->Unmap();
    Napi::Error error = Napi::Error::New(env);
    if (error.IsEmpty()) throw Napi::Error::New(env, "napi_create_external_arraybuffer failed (is the V8 sandbox on?)");
    throw error;
  }
  // From here the backing store owns one reference; the wrap takes the other.
  if (napi_wrap(env, buffer, mapping, FinalizeWrap, nullptr, nullptr) != napi_ok) {
    mapping->Release();
    throw Napi::Error::New(env, "napi_wrap failed on a mapping");
  }
  Napi::Object object(env, buffer);
  object.TypeTag(&kMappingTag);
  return object;
}

Mapping* UnwrapMapping(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) ThrowType(env, "buffer must be an ArrayBuffer");
  Napi::Object object = info[0].As<Napi::Object>();
  if (!object.CheckTypeTag(&kMappingTag)) ThrowType(env, "buffer was not created by mmap()");
  void* data = nullptr;
  if (napi_unwrap(env, object, &data) != napi_ok || data == nullptr) {
    ThrowType(env, "buffer was not created by mmap()");
  }
  return static_cast<Mapping*>(data);
}

// munmap(buffer): unmaps now and detaches the buffer. A second call is an
// EINVAL error, as munmap of a range that is no longer ours would be.
Napi::Value Munmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Mapping* mapping = UnwrapMapping(info);
  if (!mapping->mapped.load()) ThrowErrno(env, "munmap", EINVAL);
  // Detach first: no JS runs between these two steps, and after detach no
  // view can reach the address we are about to unmap.
  if (napi_detach_arraybuffer(env, info[0]) != napi_ok) {
    throw Napi::Error::New(env, "napi_detach_arraybuffer failed");
  }
  mapping->Unmap();
  return env.Undefined();
}

Napi::Value IsMapped(const Napi::CallbackInfo& info) {
  Mapping* mapping = UnwrapMapping(info);
  return Napi::Boolean::New(info.Env(), mapping->mapped.load());
}

// mappingFaulted(buffer): true once a read of a guarded mapping hit the end
// of a shrunk file (the mapping now reads as zeros).
Napi::Value MappingFaulted(const Napi::CallbackInfo& info) {
  Mapping* mapping = UnwrapMapping(info);
  bool faulted = mapping->mapped.load() && mapping->guardSlot >= 0 &&
                 guardSlots[mapping->guardSlot].faulted.load(std::memory_order_acquire) != 0;
  return Napi::Boolean::New(info.Env(), faulted);
}

// memoryStats() -> {mappings, mappedBytes, guardSlotsInUse}: what this
// process holds mapped through mmap() now, for leak checks.
Napi::Value MemoryStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t inUse = 0;
  for (const GuardSlot& slot : guardSlots) {
    if (slot.start.load(std::memory_order_acquire) != 0) inUse++;
  }
  Napi::Object stats = Napi::Object::New(env);
  stats.Set("mappings", Napi::Number::New(env, static_cast<double>(liveMappings.load())));
  stats.Set("mappedBytes", Napi::Number::New(env, static_cast<double>(liveMappedBytes.load())));
  stats.Set("guardSlotsInUse", Napi::Number::New(env, static_cast<double>(inUse)));
  return stats;
}

Napi::Value PageSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(::sysconf(_SC_PAGESIZE)));
}

}  // namespace

void InitMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("memfdCreate", Napi::Function::New(env, MemfdCreate, "memfdCreate"));
  exports.Set("ftruncate", Napi::Function::New(env, Ftruncate, "ftruncate"));
  exports.Set("fileSize", Napi::Function::New(env, FileSize, "fileSize"));
  exports.Set("addSeals", Napi::Function::New(env, AddSeals, "addSeals"));
  exports.Set("getSeals", Napi::Function::New(env, GetSeals, "getSeals"));
  exports.Set("mmap", Napi::Function::New(env, Mmap, "mmap"));
  exports.Set("munmap", Napi::Function::New(env, Munmap, "munmap"));
  exports.Set("isMapped", Napi::Function::New(env, IsMapped, "isMapped"));
  exports.Set("memoryStats", Napi::Function::New(env, MemoryStats, "memoryStats"));
  exports.Set("pageSize", Napi::Function::New(env, PageSize, "pageSize"));
  exports.Set("mappingFaulted", Napi::Function::New(env, MappingFaulted, "mappingFaulted"));
  exports.Set("sigbusGuardSlots", Napi::Number::New(env, static_cast<double>(kGuardSlots)));
}

}  // namespace qubes
