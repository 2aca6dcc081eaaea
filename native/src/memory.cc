// memfd and mmap: shared memory as zero-copy external ArrayBuffers.
//
// A mapping is an external ArrayBuffer over mmap'd memory. unmap() munmaps it
// at once and detaches the buffer (every view then reads as empty); the
// buffer's finalizer is only a safety net for mappings nobody unmapped.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "common.h"

namespace qubes {
namespace {

// Tags every ArrayBuffer this addon created by mmap, so that unmap() can
// refuse any other buffer before trusting its wrapped pointer.
constexpr napi_type_tag kMappingTag = {0x7175626573676d61ULL, 0x6d617070696e6701ULL};

// One mmap'd range. Owned jointly by the ArrayBuffer's backing store (its
// finalizer) and the napi_wrap on the buffer object: freed when both let go.
struct Mapping {
  void* address;
  size_t length;
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

// mmap(fd, offset, length, writable, populate) -> ArrayBuffer
Napi::Value Mmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  int64_t offset = ArgInteger(info, 1, "offset", 0, INT64_C(1) << 46);
  int64_t length = ArgInteger(info, 2, "length", 1, INT64_C(1) << 40);
  bool writable = ArgBool(info, 3, "writable", false);
  bool populate = ArgBool(info, 4, "populate", false);
  if (offset % ::sysconf(_SC_PAGESIZE) != 0) ThrowRange(env, "offset must be a multiple of the page size");

  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  int flags = MAP_SHARED | (populate ? MAP_POPULATE : 0);
  void* address = ::mmap(nullptr, static_cast<size_t>(length), prot, flags, fd, static_cast<off_t>(offset));
  if (address == MAP_FAILED) ThrowErrno(env, "mmap", errno);

  Mapping* mapping = new Mapping{address, static_cast<size_t>(length)};
  napi_value buffer;
  napi_status status = napi_create_external_arraybuffer(env, address, mapping->length,
                                                        FinalizeBackingStore, mapping, &buffer);
  if (status != napi_ok) {
    ::munmap(address, mapping->length);
    delete mapping;
    throw Napi::Error::New(env, "napi_create_external_arraybuffer failed (is the V8 sandbox on?)");
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
  exports.Set("pageSize", Napi::Function::New(env, PageSize, "pageSize"));
}

}  // namespace qubes
