// Error construction and argument checking shared by every binding.
#include <uv.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include "common.h"

namespace qubes {

Napi::Error ErrnoError(Napi::Env env, const char* syscall, int err) {
  const char* code = uv_err_name(-err);
  std::string message = std::string(syscall) + " failed: " + code + " (" + std::strerror(err) + ")";
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

void ThrowErrno(Napi::Env env, const char* syscall, int err) { throw ErrnoError(env, syscall, err); }

void ThrowType(Napi::Env env, const std::string& message) {
  Napi::TypeError error = Napi::TypeError::New(env, message);
  error.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
  throw error;
}

void ThrowRange(Napi::Env env, const std::string& message) {
  Napi::RangeError error = Napi::RangeError::New(env, message);
  error.Set("code", Napi::String::New(env, "ERR_OUT_OF_RANGE"));
  throw error;
}

int64_t ArgInteger(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t min,
                   int64_t max) {
  Napi::Env env = info.Env();
  if (index >= info.Length() || !info[index].IsNumber()) {
    ThrowType(env, std::string(name) + " must be a number");
  }
  double value = info[index].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(value) || std::floor(value) != value) {
    ThrowRange(env, std::string(name) + " must be an integer");
  }
  if (value < static_cast<double>(min) || value > static_cast<double>(max)) {
    ThrowRange(env, std::string(name) + " is out of range: " + std::to_string(value));
  }
  return static_cast<int64_t>(value);
}

int32_t ArgFd(const Napi::CallbackInfo& info, size_t index, const char* name) {
  return static_cast<int32_t>(ArgInteger(info, index, name, 0, INT32_MAX));
}

bool ArgBool(const Napi::CallbackInfo& info, size_t index, const char* name, bool fallback) {
  if (index >= info.Length() || info[index].IsUndefined()) return fallback;
  if (!info[index].IsBoolean()) ThrowType(info.Env(), std::string(name) + " must be a boolean");
  return info[index].As<Napi::Boolean>().Value();
}

std::string ArgString(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (index >= info.Length() || !info[index].IsString()) {
    ThrowType(info.Env(), std::string(name) + " must be a string");
  }
  return info[index].As<Napi::String>().Utf8Value();
}

namespace {

Napi::Value Close(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  // close() never retries on EINTR on Linux: the fd is gone either way.
  if (::close(fd) != 0 && errno != EINTR) ThrowErrno(info.Env(), "close", errno);
  return info.Env().Undefined();
}

Napi::Value Dup(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) ThrowErrno(info.Env(), "fcntl", errno);
  return Napi::Number::New(info.Env(), copy);
}

Napi::Value SetNonBlocking(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  bool on = ArgBool(info, 1, "nonBlocking", true);
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) ThrowErrno(info.Env(), "fcntl", errno);
  flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (::fcntl(fd, F_SETFL, flags) != 0) ThrowErrno(info.Env(), "fcntl", errno);
  return info.Env().Undefined();
}

}  // namespace

void InitErrors(Napi::Env env, Napi::Object exports) {
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("dup", Napi::Function::New(env, Dup, "dup"));
  exports.Set("setNonBlocking", Napi::Function::New(env, SetNonBlocking, "setNonBlocking"));
}

}  // namespace qubes
