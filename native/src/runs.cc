// mmapRuns: several page runs of one file mapped side by side into one
// address range, exposed as one zero-copy external ArrayBuffer.
//
// Grant references need not name consecutive pages; gntdev still gives one
// contiguous view for any list. The memfd grant backend gets the same view by
// reserving an address range and placing each run into it with MAP_FIXED.
// Cost: one mmap per run instead of one for the whole list.
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <vector>

#include "common.h"

namespace qubes {
namespace {

// Tags the ArrayBuffers made here, distinct from memory.cc's mappings: each
// unmap function accepts only its own kind.
constexpr napi_type_tag kRunsTag = {0x7175626573727573ULL, 0x6e6d617070696e67ULL};

// The largest number of runs one call may place (the GUI protocol's grant limit).
constexpr uint32_t kMaxRuns = 98304;

// One reserved range holding every run. Owned jointly by the backing store's
// finalizer and the napi_wrap: freed when both let go.
struct RunsMapping {
  void* address;
  size_t length;  // bytes, the whole reserved range
  std::atomic<bool> mapped{true};
  std::atomic<int> owners{2};

  void Unmap() {
    bool expected = true;
    if (mapped.compare_exchange_strong(expected, false)) ::munmap(address, length);
  }
  void Release() {
    if (owners.fetch_sub(1) == 1) delete this;
  }
};

void FinalizeRunsStore(napi_env, void*, void* hint) {
  RunsMapping* mapping = static_cast<RunsMapping*>(hint);
  mapping->Unmap();
  mapping->Release();
}

void FinalizeRunsWrap(napi_env, void* data, void*) { static_cast<RunsMapping*>(data)->Release(); }

uint64_t ArrayInteger(Napi::Env env, Napi::Array array, uint32_t i, uint64_t max, const char* name) {
  Napi::Value value = array.Get(i);
  if (!value.IsNumber()) ThrowType(env, std::string(name) + " must hold numbers");
  double number = value.As<Napi::Number>().DoubleValue();
  if (!(number >= 0) || number > static_cast<double>(max) || number != static_cast<double>(static_cast<uint64_t>(number))) {
    ThrowRange(env, std::string(name) + " holds a value out of range");
  }
  return static_cast<uint64_t>(number);
}

// mmapRuns(fd, offsets: number[], lengths: number[], writable, populate) -> ArrayBuffer
Napi::Value MmapRuns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  if (info.Length() < 3 || !info[1].IsArray() || !info[2].IsArray()) {
    ThrowType(env, "offsets and lengths must be arrays");
  }
  Napi::Array offsets = info[1].As<Napi::Array>();
  Napi::Array lengths = info[2].As<Napi::Array>();
  bool writable = ArgBool(info, 3, "writable", false);
  bool populate = ArgBool(info, 4, "populate", false);
  uint32_t count = offsets.Length();
  if (count == 0 || count > kMaxRuns || lengths.Length() != count) {
    ThrowRange(env, "offsets and lengths must have the same length, 1..98304");
  }
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  std::vector<uint64_t> runOffsets(count);
  std::vector<uint64_t> runLengths(count);
  uint64_t total = 0;
  for (uint32_t i = 0; i < count; i++) {
    runOffsets[i] = ArrayInteger(env, offsets, i, UINT64_C(1) << 46, "offsets");
    runLengths[i] = ArrayInteger(env, lengths, i, UINT64_C(1) << 40, "lengths");
    if (runOffsets[i] % page != 0 || runLengths[i] == 0 || runLengths[i] % page != 0) {
      ThrowRange(env, "every offset must be page aligned and every length a positive multiple of the page size");
    }
    total += runLengths[i];
    // Node refuses external buffers over 4 GiB (buffer.constants.MAX_LENGTH).
    if (total > (UINT64_C(1) << 32)) ThrowRange(env, "the runs add up to more than 2^32 bytes");
  }

  // Reserve the whole range first, so each run lands in address space we own.
  void* base = ::mmap(nullptr, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) ThrowErrno(env, "mmap", errno);
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  int flags = MAP_SHARED | MAP_FIXED | (populate ? MAP_POPULATE : 0);
  uint64_t at = 0;
  for (uint32_t i = 0; i < count; i++) {
    void* target = static_cast<unsigned char*>(base) + at;
    void* placed = ::mmap(target, runLengths[i], prot, flags, fd, static_cast<off_t>(runOffsets[i]));
    if (placed == MAP_FAILED) {
      int err = errno;
      ::munmap(base, total);
      ThrowErrno(env, "mmap", err);
    }
    at += runLengths[i];
  }

  RunsMapping* mapping = new RunsMapping{base, static_cast<size_t>(total)};
  napi_value buffer;
  if (napi_create_external_arraybuffer(env, base, mapping->length, FinalizeRunsStore, mapping, &buffer) != napi_ok) {
    // Node may run the finalizer on this path: unmap (idempotent), leave the record to it.
    mapping->Unmap();
    Napi::Error error = Napi::Error::New(env);
    if (error.IsEmpty()) throw Napi::Error::New(env, "napi_create_external_arraybuffer failed (is the V8 sandbox on?)");
    throw error;
  }
  if (napi_wrap(env, buffer, mapping, FinalizeRunsWrap, nullptr, nullptr) != napi_ok) {
    mapping->Release();
    throw Napi::Error::New(env, "napi_wrap failed on a runs mapping");
  }
  Napi::Object object(env, buffer);
  object.TypeTag(&kRunsTag);
  return object;
}

RunsMapping* UnwrapRuns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) ThrowType(env, "buffer must be an ArrayBuffer");
  Napi::Object object = info[0].As<Napi::Object>();
  if (!object.CheckTypeTag(&kRunsTag)) ThrowType(env, "buffer was not created by mmapRuns()");
  void* data = nullptr;
  if (napi_unwrap(env, object, &data) != napi_ok || data == nullptr) ThrowType(env, "buffer was not created by mmapRuns()");
  return static_cast<RunsMapping*>(data);
}

// munmapRuns(buffer): detaches the buffer and unmaps the whole range now. A
// second call is EINVAL.
Napi::Value MunmapRuns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RunsMapping* mapping = UnwrapRuns(info);
  if (!mapping->mapped.load()) ThrowErrno(env, "munmap", EINVAL);
  if (napi_detach_arraybuffer(env, info[0]) != napi_ok) throw Napi::Error::New(env, "napi_detach_arraybuffer failed");
  mapping->Unmap();
  return env.Undefined();
}

}  // namespace

void InitRuns(Napi::Env env, Napi::Object exports) {
  exports.Set("mmapRuns", Napi::Function::New(env, MmapRuns, "mmapRuns"));
  exports.Set("munmapRuns", Napi::Function::New(env, MunmapRuns, "munmapRuns"));
}

}  // namespace qubes
