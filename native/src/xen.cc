// Xen grant tables through the kernel's gntalloc (share) and gntdev (map)
// devices. Compiled when <xen/gntalloc.h> and <xen/gntdev.h> exist
// (linux-libc-dev); usable only where /dev/xen exists. The device fds are
// opened by the caller with openDevice() and mapped with the generic mmap().
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <vector>

#include "common.h"

#ifdef QUBES_HAVE_XEN_GNT
// The kernel's uapi gntdev.h names two Xen ABI types without defining them.
typedef uint32_t grant_ref_t;
typedef uint16_t domid_t;
#include <xen/gntalloc.h>
#include <xen/gntdev.h>
#endif

namespace qubes {
namespace {

// The largest grant list the GUI protocol can carry (MAX_GRANT_REFS_COUNT).
constexpr int64_t kMaxRefs = 98304;

// openDevice(path) -> fd, read-write, close-on-exec (e.g. /dev/xen/gntdev).
Napi::Value OpenDevice(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "path");
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) ThrowErrno(info.Env(), "open", errno);
  return Napi::Number::New(info.Env(), fd);
}

#ifdef QUBES_HAVE_XEN_GNT

// gntallocShare(fd, domid, count, writable) -> { index, refs }
Napi::Value GntallocShare(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  int64_t domid = ArgInteger(info, 1, "domid", 0, 0x7fef);
  int64_t count = ArgInteger(info, 2, "count", 1, kMaxRefs);
  bool writable = ArgBool(info, 3, "writable", true);
  size_t size = offsetof(ioctl_gntalloc_alloc_gref, gref_ids) + sizeof(uint32_t) * static_cast<size_t>(count);
  std::vector<unsigned char> storage(size);
  auto* request = reinterpret_cast<ioctl_gntalloc_alloc_gref*>(storage.data());
  request->domid = static_cast<uint16_t>(domid);
  request->flags = writable ? GNTALLOC_FLAG_WRITABLE : 0;
  request->count = static_cast<uint32_t>(count);
  if (::ioctl(fd, IOCTL_GNTALLOC_ALLOC_GREF, request) != 0) ThrowErrno(env, "ioctl(IOCTL_GNTALLOC_ALLOC_GREF)", errno);
  Napi::Object result = Napi::Object::New(env);
  result.Set("index", Napi::Number::New(env, static_cast<double>(request->index)));
  Napi::Array refs = Napi::Array::New(env, static_cast<size_t>(count));
  for (uint32_t i = 0; i < request->count; i++) refs.Set(i, Napi::Number::New(env, request->gref_ids[i]));
  result.Set("refs", refs);
  return result;
}

// gntallocRevoke(fd, index, count)
Napi::Value GntallocRevoke(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  ioctl_gntalloc_dealloc_gref request{};
  request.index = static_cast<uint64_t>(ArgInteger(info, 1, "index", 0, INT64_C(1) << 52));
  request.count = static_cast<uint32_t>(ArgInteger(info, 2, "count", 1, kMaxRefs));
  if (::ioctl(fd, IOCTL_GNTALLOC_DEALLOC_GREF, &request) != 0) {
    ThrowErrno(info.Env(), "ioctl(IOCTL_GNTALLOC_DEALLOC_GREF)", errno);
  }
  return info.Env().Undefined();
}

// gntdevMap(fd, domid, refs) -> index (the mmap offset of the new range)
Napi::Value GntdevMap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  int64_t domid = ArgInteger(info, 1, "domid", 0, 0x7fef);
  if (info.Length() < 3 || !info[2].IsArray()) ThrowType(env, "refs must be an array of grant references");
  Napi::Array refs = info[2].As<Napi::Array>();
  // Read the count once: a getter on the array could change its length under the loop.
  const uint32_t count = refs.Length();
  if (count == 0 || count > kMaxRefs) ThrowRange(env, "refs must hold 1..98304 references");
  size_t size = offsetof(ioctl_gntdev_map_grant_ref, refs) + sizeof(ioctl_gntdev_grant_ref) * count;
  std::vector<unsigned char> storage(size);
  auto* request = reinterpret_cast<ioctl_gntdev_map_grant_ref*>(storage.data());
  request->count = count;
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value value = refs.Get(i);
    if (!value.IsNumber()) ThrowType(env, "refs must be an array of grant references");
    double ref = value.As<Napi::Number>().DoubleValue();
    if (ref < 0 || ref > UINT32_MAX || ref != static_cast<double>(static_cast<uint32_t>(ref))) {
      ThrowRange(env, "grant reference out of range");
    }
    request->refs[i].domid = static_cast<uint32_t>(domid);
    request->refs[i].ref = static_cast<uint32_t>(ref);
  }
  if (::ioctl(fd, IOCTL_GNTDEV_MAP_GRANT_REF, request) != 0) ThrowErrno(env, "ioctl(IOCTL_GNTDEV_MAP_GRANT_REF)", errno);
  return Napi::Number::New(env, static_cast<double>(request->index));
}

// gntdevUnmap(fd, index, count): after munmap of the range.
Napi::Value GntdevUnmap(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  ioctl_gntdev_unmap_grant_ref request{};
  request.index = static_cast<uint64_t>(ArgInteger(info, 1, "index", 0, INT64_C(1) << 52));
  request.count = static_cast<uint32_t>(ArgInteger(info, 2, "count", 1, kMaxRefs));
  if (::ioctl(fd, IOCTL_GNTDEV_UNMAP_GRANT_REF, &request) != 0) {
    ThrowErrno(info.Env(), "ioctl(IOCTL_GNTDEV_UNMAP_GRANT_REF)", errno);
  }
  return info.Env().Undefined();
}

// setUnmapNotify(fd, device 'gntalloc'|'gntdev', index, clearByteOffset | -1, eventChannelPort | -1)
Napi::Value SetUnmapNotify(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  std::string device = ArgString(info, 1, "device");
  int64_t index = ArgInteger(info, 2, "index", 0, INT64_C(1) << 52);
  bool clearByte = ArgBool(info, 3, "clearByte", true);
  int64_t port = ArgInteger(info, 4, "eventChannelPort", -1, UINT32_MAX);
  uint32_t action = (clearByte ? UNMAP_NOTIFY_CLEAR_BYTE : 0) | (port >= 0 ? UNMAP_NOTIFY_SEND_EVENT : 0);
  int rc;
  if (device == "gntalloc") {
    ioctl_gntalloc_unmap_notify request{static_cast<uint64_t>(index), action, static_cast<uint32_t>(port < 0 ? 0 : port)};
    rc = ::ioctl(fd, IOCTL_GNTALLOC_SET_UNMAP_NOTIFY, &request);
  } else if (device == "gntdev") {
    ioctl_gntdev_unmap_notify request{static_cast<uint64_t>(index), action, static_cast<uint32_t>(port < 0 ? 0 : port)};
    rc = ::ioctl(fd, IOCTL_GNTDEV_SET_UNMAP_NOTIFY, &request);
  } else {
    ThrowType(info.Env(), "device must be 'gntalloc' or 'gntdev'");
  }
  if (rc != 0) ThrowErrno(info.Env(), "ioctl(SET_UNMAP_NOTIFY)", errno);
  return info.Env().Undefined();
}

#endif  // QUBES_HAVE_XEN_GNT

}  // namespace

void InitXen(Napi::Env env, Napi::Object exports) {
  Napi::Object xen = Napi::Object::New(env);
  xen.Set("openDevice", Napi::Function::New(env, OpenDevice, "openDevice"));
#ifdef QUBES_HAVE_XEN_GNT
  xen.Set("compiled", Napi::Boolean::New(env, true));
  xen.Set("gntallocShare", Napi::Function::New(env, GntallocShare, "gntallocShare"));
  xen.Set("gntallocRevoke", Napi::Function::New(env, GntallocRevoke, "gntallocRevoke"));
  xen.Set("gntdevMap", Napi::Function::New(env, GntdevMap, "gntdevMap"));
  xen.Set("gntdevUnmap", Napi::Function::New(env, GntdevUnmap, "gntdevUnmap"));
  xen.Set("setUnmapNotify", Napi::Function::New(env, SetUnmapNotify, "setUnmapNotify"));
#else
  xen.Set("compiled", Napi::Boolean::New(env, false));
#endif
  exports.Set("xen", xen);
}

}  // namespace qubes
