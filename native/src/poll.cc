// Poll: fd readiness delivered to JS by a libuv poll handle, never blocking
// the event loop.
//
// The uv_poll_t lives in a heap block of its own, freed by uv_close's
// callback, so the JS wrapper can be collected before libuv is done with the
// handle. While started, the wrapper holds a strong reference to itself so
// the callback cannot be collected under a live handle; close() drops the
// callback, so that nothing of the wrapper's owner outlives it.
#include <uv.h>

#include "common.h"

namespace qubes {
namespace {

constexpr napi_type_tag kPollTag = {0x7175626573706f6cULL, 0x6c68616e646c6501ULL};

class Poll;

struct PollHandle {
  uv_poll_t handle;
  Poll* owner;  // null once the wrapper is gone or closed
};

class Poll : public Napi::ObjectWrap<Poll> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Poll",
                       {
                           InstanceMethod<&Poll::Start>("start"),
                           InstanceMethod<&Poll::Stop>("stop"),
                           InstanceMethod<&Poll::Ref>("ref"),
                           InstanceMethod<&Poll::Unref>("unref"),
                           InstanceMethod<&Poll::Close>("close"),
                           InstanceAccessor<&Poll::IsClosed>("closed"),
                       });
  }

  // new Poll(fd, callback(error: Error | null, events: number))
  explicit Poll(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Poll>(info) {
    Napi::Env env = info.Env();
    int fd = ArgFd(info, 0, "fd");
    if (info.Length() < 2 || !info[1].IsFunction()) ThrowType(env, "callback must be a function");
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(env, "QubesPoll");
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) throw Napi::Error::New(env, "no uv loop");
    handle_ = new PollHandle{};
    handle_->owner = this;
    int rc = uv_poll_init(loop, &handle_->handle, fd);
    if (rc != 0) {
      delete handle_;
      handle_ = nullptr;
      ThrowErrno(env, "uv_poll_init", -rc);
    }
    handle_->handle.data = handle_;
    info.This().As<Napi::Object>().TypeTag(&kPollTag);
  }

  ~Poll() override { CloseHandle(false); }

 private:
  static void OnClosed(uv_handle_t* handle) { delete static_cast<PollHandle*>(handle->data); }

  static void OnEvent(uv_poll_t* handle, int status, int events) {
    PollHandle* block = static_cast<PollHandle*>(handle->data);
    if (block->owner != nullptr) block->owner->Deliver(status, events);
  }

  void Deliver(int status, int events) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Value error = status < 0 ? ErrnoError(env, "uv_poll", -status).Value() : env.Null();
    int flags = 0;
    if (events & UV_READABLE) flags |= 1;
    if (events & UV_WRITABLE) flags |= 2;
    if (events & UV_DISCONNECT) flags |= 4;
    // MakeCallback with an async context: promise jobs queued by the callback
    // run before we return to libuv. We are called from libuv, not from JS:
    // an exception the callback throws must not unwind into C, so it goes to
    // Node's uncaught-exception handling, as for any other event callback.
    try {
      callback_.MakeCallback(Value(), {error, Napi::Number::New(env, flags)}, *context_);
    } catch (const Napi::Error& thrown) {
      napi_fatal_exception(env, thrown.Value());
    } catch (const std::exception& thrown) {
      napi_fatal_exception(env, Napi::Error::New(env, thrown.what()).Value());
    }
  }

  // Every method re-checks the receiver's type tag and that the handle is open.
  void CheckOpen(const Napi::CallbackInfo& info) {
    if (!info.This().IsObject() || !info.This().As<Napi::Object>().CheckTypeTag(&kPollTag)) {
      ThrowType(info.Env(), "receiver is not a Poll");
    }
    if (handle_ == nullptr) ThrowErrno(info.Env(), "uv_poll", EBADF);
  }

  // Closes the libuv handle; the PollHandle block is freed by OnClosed. From
  // the destructor the JS object is already gone: no reference to drop.
  void CloseHandle(bool dropSelfReference) {
    if (handle_ == nullptr) return;
    handle_->owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&handle_->handle), OnClosed);
    handle_ = nullptr;
    if (started_) {
      started_ = false;
      if (dropSelfReference) Napi::ObjectWrap<Poll>::Unref();
    }
  }

  // start(events: 1 readable | 2 writable | 4 disconnect)
  Napi::Value Start(const Napi::CallbackInfo& info) {
    CheckOpen(info);
    int requested = static_cast<int>(ArgInteger(info, 0, "events", 1, 7));
    int events = 0;
    if (requested & 1) events |= UV_READABLE;
    if (requested & 2) events |= UV_WRITABLE;
    if (requested & 4) events |= UV_DISCONNECT;
    int rc = uv_poll_start(&handle_->handle, events, OnEvent);
    if (rc != 0) ThrowErrno(info.Env(), "uv_poll_start", -rc);
    if (!started_) {
      started_ = true;
      Napi::ObjectWrap<Poll>::Ref();
    }
    return info.Env().Undefined();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    CheckOpen(info);
    uv_poll_stop(&handle_->handle);
    if (started_) {
      started_ = false;
      Napi::ObjectWrap<Poll>::Unref();
    }
    return info.Env().Undefined();
  }

  // ref()/unref(): whether this handle keeps the event loop alive.
  Napi::Value Ref(const Napi::CallbackInfo& info) {
    CheckOpen(info);
    uv_ref(reinterpret_cast<uv_handle_t*>(&handle_->handle));
    return info.This();
  }

  Napi::Value Unref(const Napi::CallbackInfo& info) {
    CheckOpen(info);
    uv_unref(reinterpret_cast<uv_handle_t*>(&handle_->handle));
    return info.This();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (!info.This().IsObject() || !info.This().As<Napi::Object>().CheckTypeTag(&kPollTag)) {
      ThrowType(info.Env(), "receiver is not a Poll");
    }
    CloseHandle(true);
    // The callback usually closes over the wrapper's owner, which holds the
    // wrapper: a strong reference kept past close() would keep all three
    // alive for good. Dropped here (also when close() runs inside the
    // callback: its function stays alive on the stack until it returns).
    callback_.Reset();
    return info.Env().Undefined();
  }

  Napi::Value IsClosed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), handle_ == nullptr); }

  PollHandle* handle_ = nullptr;
  bool started_ = false;
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> context_;
};

}  // namespace

void InitPoll(Napi::Env env, Napi::Object exports, AddonData* data) {
  Napi::Function constructor = Poll::Define(env);
  data->pollConstructor = Napi::Persistent(constructor);
  exports.Set("Poll", constructor);
}

}  // namespace qubes
