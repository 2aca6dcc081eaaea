// eventfd: the cross-process wake-up primitive (Xen's event channel stand-in).
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>

#include "common.h"

namespace qubes {
namespace {

// eventfdCreate(initial, semaphore) -> fd; always non-blocking and close-on-exec.
Napi::Value EventfdCreate(const Napi::CallbackInfo& info) {
  int64_t initial = info.Length() > 0 && !info[0].IsUndefined() ? ArgInteger(info, 0, "initial", 0, UINT32_MAX) : 0;
  bool semaphore = ArgBool(info, 1, "semaphore", false);
  int flags = EFD_CLOEXEC | EFD_NONBLOCK | (semaphore ? EFD_SEMAPHORE : 0);
  int fd = ::eventfd(static_cast<unsigned int>(initial), flags);
  if (fd < 0) ThrowErrno(info.Env(), "eventfd", errno);
  return Napi::Number::New(info.Env(), fd);
}

// eventfdSignal(fd, value = 1): adds value to the counter. Returns false when
// the counter would overflow (EAGAIN), which a caller may treat as "already
// signalled".
Napi::Value EventfdSignal(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  int64_t value = info.Length() > 1 && !info[1].IsUndefined() ? ArgInteger(info, 1, "value", 1, INT64_C(1) << 53) : 1;
  uint64_t raw = static_cast<uint64_t>(value);
  // The fd's O_NONBLOCK flag is shared with every process holding it, and a
  // hostile one can clear it: ask poll() first, so a full counter gives
  // "false" instead of a write() that blocks the event loop.
  pollfd ready{fd, POLLOUT, 0};
  int polled;
  do {
    polled = ::poll(&ready, 1, 0);
  } while (polled < 0 && errno == EINTR);
  if (polled < 0) ThrowErrno(info.Env(), "poll", errno);
  if (ready.revents & POLLNVAL) ThrowErrno(info.Env(), "write", EBADF);
  if (polled == 0 || !(ready.revents & POLLOUT)) return Napi::Boolean::New(info.Env(), false);
  ssize_t n;
  do {
    n = ::write(fd, &raw, sizeof raw);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN) return Napi::Boolean::New(info.Env(), false);
    ThrowErrno(info.Env(), "write", errno);
  }
  return Napi::Boolean::New(info.Env(), true);
}

// Whether preadv2(RWF_NOWAIT) reads eventfds here (Linux 5.12 and later);
// cleared for good the first time the kernel says it does not.
std::atomic<bool> readNowaitWorks{true};

// eventfdConsume(fd) -> counter value, or 0 when nothing was pending.
Napi::Value EventfdConsume(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  uint64_t raw = 0;
  ssize_t n;
  // RWF_NOWAIT makes this one read non-blocking whatever the shared O_NONBLOCK
  // flag says: a peer that clears the flag and drains the counter between a
  // poll and our read cannot block us.
  if (readNowaitWorks.load(std::memory_order_relaxed)) {
    iovec into{&raw, sizeof raw};
    do {
      n = ::preadv2(fd, &into, 1, -1, RWF_NOWAIT);
    } while (n < 0 && errno == EINTR);
    if (n >= 0 || (errno != EOPNOTSUPP && errno != ENOSYS)) {
      if (n < 0) {
        if (errno == EAGAIN) return Napi::Number::New(info.Env(), 0);
        ThrowErrno(info.Env(), "read", errno);
      }
      if (n != sizeof raw) ThrowErrno(info.Env(), "read", EIO);
      return Napi::Number::New(info.Env(), static_cast<double>(raw));
    }
    readNowaitWorks.store(false, std::memory_order_relaxed);
  }
  // Older kernels: as for signal, an empty counter on an fd someone made
  // blocking must not block us; poll first (a peer draining the counter
  // between the poll and the read can still block this read).
  pollfd ready{fd, POLLIN, 0};
  int polled;
  do {
    polled = ::poll(&ready, 1, 0);
  } while (polled < 0 && errno == EINTR);
  if (polled < 0) ThrowErrno(info.Env(), "poll", errno);
  if (ready.revents & POLLNVAL) ThrowErrno(info.Env(), "read", EBADF);
  if (polled == 0 || !(ready.revents & POLLIN)) return Napi::Number::New(info.Env(), 0);
  do {
    n = ::read(fd, &raw, sizeof raw);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN) return Napi::Number::New(info.Env(), 0);
    ThrowErrno(info.Env(), "read", errno);
  }
  if (n != sizeof raw) ThrowErrno(info.Env(), "read", EIO);
  return Napi::Number::New(info.Env(), static_cast<double>(raw));
}

}  // namespace

void InitEventfd(Napi::Env env, Napi::Object exports) {
  exports.Set("eventfdCreate", Napi::Function::New(env, EventfdCreate, "eventfdCreate"));
  exports.Set("eventfdSignal", Napi::Function::New(env, EventfdSignal, "eventfdSignal"));
  exports.Set("eventfdConsume", Napi::Function::New(env, EventfdConsume, "eventfdConsume"));
}

}  // namespace qubes
