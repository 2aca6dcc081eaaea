// AF_UNIX sockets with file descriptors passed as SCM_RIGHTS.
//
// Every socket is created non-blocking and close-on-exec; received fds get
// MSG_CMSG_CLOEXEC. Calls that would block return null instead of throwing,
// so the caller waits on a Poll handle and tries again.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common.h"

namespace qubes {
namespace {

// The kernel's limit on fds in one SCM_RIGHTS message (SCM_MAX_FD).
constexpr size_t kMaxFds = 253;

int ArgSocketType(const Napi::CallbackInfo& info, size_t index) {
  std::string type = ArgString(info, index, "type");
  if (type == "stream") return SOCK_STREAM;
  if (type == "seqpacket") return SOCK_SEQPACKET;
  ThrowType(info.Env(), "type must be 'stream' or 'seqpacket', got '" + type + "'");
}

sockaddr_un ArgPath(const Napi::CallbackInfo& info, size_t index, socklen_t* length) {
  std::string path = ArgString(info, index, "path");
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof address.sun_path) {
    ThrowRange(info.Env(), "path must be 1.." + std::to_string(sizeof address.sun_path - 1) +
                               " bytes, got " + std::to_string(path.size()));
  }
  std::memcpy(address.sun_path, path.data(), path.size());
  *length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return address;
}

Napi::Value Socket(const Napi::CallbackInfo& info) {
  int type = ArgSocketType(info, 0);
  int fd = ::socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(info.Env(), "socket", errno);
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value Socketpair(const Napi::CallbackInfo& info) {
  int type = ArgSocketType(info, 0);
  int fds[2];
  if (::socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    ThrowErrno(info.Env(), "socketpair", errno);
  }
  Napi::Array pair = Napi::Array::New(info.Env(), 2);
  pair.Set(0u, Napi::Number::New(info.Env(), fds[0]));
  pair.Set(1u, Napi::Number::New(info.Env(), fds[1]));
  return pair;
}

Napi::Value Bind(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  socklen_t length;
  sockaddr_un address = ArgPath(info, 1, &length);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0) ThrowErrno(info.Env(), "bind", errno);
  return info.Env().Undefined();
}

Napi::Value Listen(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  int backlog = static_cast<int>(ArgInteger(info, 1, "backlog", 0, 4096));
  if (::listen(fd, backlog) != 0) ThrowErrno(info.Env(), "listen", errno);
  return info.Env().Undefined();
}

// accept(fd) -> new fd, or null when no connection is pending.
Napi::Value Accept(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  int client;
  do {
    client = ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  } while (client < 0 && errno == EINTR);
  if (client < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return info.Env().Null();
    ThrowErrno(info.Env(), "accept4", errno);
  }
  return Napi::Number::New(info.Env(), client);
}

// connect(fd, path) -> true when connected, false when the listener's backlog
// is full (EAGAIN: poll for writable and call again). A missing or refusing
// listener throws ENOENT / ECONNREFUSED.
Napi::Value Connect(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  socklen_t length;
  sockaddr_un address = ArgPath(info, 1, &length);
  int rc;
  do {
    rc = ::connect(fd, reinterpret_cast<sockaddr*>(&address), length);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    if (errno == EAGAIN || errno == EINPROGRESS) return Napi::Boolean::New(info.Env(), false);
    ThrowErrno(info.Env(), "connect", errno);
  }
  return Napi::Boolean::New(info.Env(), true);
}

// sendmsg(fd, data: Uint8Array, fds?: number[]) -> bytes sent, or null when
// the socket buffer is full. The fds travel with the first byte sent.
Napi::Value Sendmsg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  if (info.Length() < 2 || !info[1].IsTypedArray()) ThrowType(env, "data must be a Uint8Array");
  Napi::TypedArray typed = info[1].As<Napi::TypedArray>();
  if (typed.TypedArrayType() != napi_uint8_array) ThrowType(env, "data must be a Uint8Array");
  Napi::Uint8Array data = typed.As<Napi::Uint8Array>();

  std::vector<int> fds;
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    if (!info[2].IsArray()) ThrowType(env, "fds must be an array of fds");
    Napi::Array array = info[2].As<Napi::Array>();
    const uint32_t count = array.Length();  // once: a getter could grow the array under the loop
    if (count > kMaxFds) ThrowRange(env, "at most 253 fds fit in one message");
    for (uint32_t i = 0; i < count; i++) {
      Napi::Value value = array.Get(i);
      if (!value.IsNumber()) ThrowType(env, "fds must be an array of fds");
      double number = value.As<Napi::Number>().DoubleValue();
      if (number < 0 || number > INT32_MAX || number != static_cast<int>(number)) ThrowRange(env, "bad fd in fds");
      fds.push_back(static_cast<int>(number));
    }
  }
  if (!fds.empty() && data.ByteLength() == 0) ThrowRange(env, "fds need at least one data byte to travel with");

  iovec vector{data.Data(), data.ByteLength()};
  msghdr message{};
  message.msg_iov = &vector;
  message.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.resize(CMSG_SPACE(sizeof(int) * fds.size()));
    message.msg_control = control.data();
    message.msg_controllen = control.size();
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(header), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t sent;
  do {
    // MSG_DONTWAIT: never block, even if another holder of the socket cleared O_NONBLOCK.
    sent = ::sendmsg(fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Null();
    ThrowErrno(env, "sendmsg", errno);
  }
  return Napi::Number::New(env, static_cast<double>(sent));
}

// recvmsg(fd, buffer: Uint8Array, maxFds) -> { bytes, fds } (bytes 0 = end of
// stream), or null when nothing is there yet. Truncated control data (more
// fds than maxFds) or a truncated datagram is an EMSGSIZE error; any fds that
// did arrive are closed first.
Napi::Value Recvmsg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  if (info.Length() < 2 || !info[1].IsTypedArray()) ThrowType(env, "buffer must be a Uint8Array");
  Napi::TypedArray typed = info[1].As<Napi::TypedArray>();
  if (typed.TypedArrayType() != napi_uint8_array) ThrowType(env, "buffer must be a Uint8Array");
  Napi::Uint8Array buffer = typed.As<Napi::Uint8Array>();
  if (buffer.ByteLength() == 0) ThrowRange(env, "buffer must not be empty");
  size_t maxFds = static_cast<size_t>(ArgInteger(info, 2, "maxFds", 0, kMaxFds));

  iovec vector{buffer.Data(), buffer.ByteLength()};
  msghdr message{};
  message.msg_iov = &vector;
  message.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * (maxFds > 0 ? maxFds : 1)));
  if (maxFds > 0) {
    message.msg_control = control.data();
    message.msg_controllen = control.size();
  }
  ssize_t received;
  do {
    received = ::recvmsg(fd, &message, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (received < 0 && errno == EINTR);
  if (received < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Null();
    ThrowErrno(env, "recvmsg", errno);
  }

  std::vector<int> fds;
  for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr; header = CMSG_NXTHDR(&message, header)) {
    if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const unsigned char* cursor = CMSG_DATA(header);
    for (size_t i = 0; i < count; i++) {
      int received_fd;
      std::memcpy(&received_fd, cursor + i * sizeof(int), sizeof(int));
      fds.push_back(received_fd);
    }
  }
  if (message.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) {
    for (int received_fd : fds) ::close(received_fd);
    Napi::Error error = ErrnoError(env, "recvmsg", EMSGSIZE);
    std::string what = (message.msg_flags & MSG_CTRUNC) ? "control data truncated (MSG_CTRUNC): more than " +
                                                              std::to_string(maxFds) + " fds were sent"
                                                        : "datagram truncated (MSG_TRUNC)";
    error.Set("message", Napi::String::New(env, "recvmsg failed: " + what + "; " +
                                                    std::to_string(fds.size()) + " received fds were closed"));
    throw error;
  }

  Napi::Object result = Napi::Object::New(env);
  result.Set("bytes", Napi::Number::New(env, static_cast<double>(received)));
  Napi::Array array = Napi::Array::New(env, fds.size());
  for (size_t i = 0; i < fds.size(); i++) array.Set(static_cast<uint32_t>(i), Napi::Number::New(env, fds[i]));
  result.Set("fds", array);
  return result;
}

Napi::Value Shutdown(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  std::string how = ArgString(info, 1, "how");
  int mode = how == "read" ? SHUT_RD : how == "write" ? SHUT_WR : how == "both" ? SHUT_RDWR : -1;
  if (mode < 0) ThrowType(info.Env(), "how must be 'read', 'write' or 'both'");
  if (::shutdown(fd, mode) != 0) ThrowErrno(info.Env(), "shutdown", errno);
  return info.Env().Undefined();
}

// peerCredentials(fd) -> { pid, uid, gid } of the process that connected.
Napi::Value PeerCredentials(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  ucred credentials{};
  socklen_t length = sizeof credentials;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) {
    ThrowErrno(info.Env(), "getsockopt", errno);
  }
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("pid", Napi::Number::New(info.Env(), credentials.pid));
  result.Set("uid", Napi::Number::New(info.Env(), credentials.uid));
  result.Set("gid", Napi::Number::New(info.Env(), credentials.gid));
  return result;
}

}  // namespace

void InitSockets(Napi::Env env, Napi::Object exports) {
  exports.Set("socket", Napi::Function::New(env, Socket, "socket"));
  exports.Set("socketpair", Napi::Function::New(env, Socketpair, "socketpair"));
  exports.Set("bind", Napi::Function::New(env, Bind, "bind"));
  exports.Set("listen", Napi::Function::New(env, Listen, "listen"));
  exports.Set("accept", Napi::Function::New(env, Accept, "accept"));
  exports.Set("connect", Napi::Function::New(env, Connect, "connect"));
  exports.Set("sendmsg", Napi::Function::New(env, Sendmsg, "sendmsg"));
  exports.Set("recvmsg", Napi::Function::New(env, Recvmsg, "recvmsg"));
  exports.Set("shutdown", Napi::Function::New(env, Shutdown, "shutdown"));
  exports.Set("peerCredentials", Napi::Function::New(env, PeerCredentials, "peerCredentials"));
}

}  // namespace qubes
