// Shared declarations of the qubes_native addon.
//
// Every exported function checks its arguments again (the TypeScript loader
// checked them first) and reports a failed system call as a JS Error whose
// `syscall` names the call and whose `code` is the errno name (`ENOENT`...).
// No global state: per-instance data lives in AddonData.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace qubes {

// Per-addon-instance data (one per Node environment or worker).
struct AddonData {
  Napi::FunctionReference pollConstructor;
  // XenVchan's constructor (set only when libxenvchan was found at build time).
  Napi::FunctionReference xenVchanConstructor;
};

// Builds the Error thrown for a failed system call: message
// "<syscall> failed: <CODE> (<strerror>)", with code, errno (negative, as Node
// core does) and syscall properties.
Napi::Error ErrnoError(Napi::Env env, const char* syscall, int err);

// Throws ErrnoError as a C++ exception; node-addon-api turns it into a JS
// throw at the binding boundary.
[[noreturn]] void ThrowErrno(Napi::Env env, const char* syscall, int err);

// Throws a TypeError / RangeError with a code of our own (ERR_INVALID_ARG_*).
[[noreturn]] void ThrowType(Napi::Env env, const std::string& message);
[[noreturn]] void ThrowRange(Napi::Env env, const std::string& message);

// Argument readers: each checks type and range and throws a named error.
int32_t ArgFd(const Napi::CallbackInfo& info, size_t index, const char* name);
int64_t ArgInteger(const Napi::CallbackInfo& info, size_t index, const char* name,
                   int64_t min, int64_t max);
bool ArgBool(const Napi::CallbackInfo& info, size_t index, const char* name,
             bool fallback);
std::string ArgString(const Napi::CallbackInfo& info, size_t index, const char* name);

void InitErrors(Napi::Env env, Napi::Object exports);
void InitMemory(Napi::Env env, Napi::Object exports);
void InitEventfd(Napi::Env env, Napi::Object exports);
void InitPoll(Napi::Env env, Napi::Object exports, AddonData* data);
void InitSockets(Napi::Env env, Napi::Object exports);
void InitXen(Napi::Env env, Napi::Object exports);
void InitRuns(Napi::Env env, Napi::Object exports);
void InitXenVchan(Napi::Env env, Napi::Object exports, AddonData* data);
void InitCopy(Napi::Env env, Napi::Object exports);

}  // namespace qubes
