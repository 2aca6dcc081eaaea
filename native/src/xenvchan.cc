// XenVchan: a libxenvchan channel (Debian's libxen-dev) as a JS object.
//
// Compiled only when /usr/include/libxenvchan.h exists (binding.gyp defines
// QUBES_HAVE_LIBXENVCHAN and links -lxenvchan); elsewhere the export is an
// object whose `compiled` is false. Every channel is non-blocking: readiness
// comes from a Poll on fdForSelect(), so the event loop never blocks.
#include <cerrno>

#include "common.h"

#ifdef QUBES_HAVE_LIBXENVCHAN
extern "C" {
#include <libxenvchan.h>
}
#endif

namespace qubes {
namespace {

#ifdef QUBES_HAVE_LIBXENVCHAN

constexpr napi_type_tag kXenVchanTag = {0x717562657378656eULL, 0x766368616e000001ULL};

// The largest ring libxenvchan offers (order 20).
constexpr int64_t kMaxRing = INT64_C(1) << 20;

class XenVchan : public Napi::ObjectWrap<XenVchan> {
 public:
  static Napi::Function Define(Napi::Env env, AddonData* data) {
    return DefineClass(env, "XenVchan",
                       {
                           StaticMethod<&XenVchan::ServerInit>("serverInit"),
                           StaticMethod<&XenVchan::ClientInit>("clientInit"),
                           InstanceMethod<&XenVchan::Read>("read"),
                           InstanceMethod<&XenVchan::Write>("write"),
                           InstanceMethod<&XenVchan::Recv>("recv"),
                           InstanceMethod<&XenVchan::Send>("send"),
                           InstanceMethod<&XenVchan::DataReady>("dataReady"),
                           InstanceMethod<&XenVchan::BufferSpace>("bufferSpace"),
                           InstanceMethod<&XenVchan::IsOpen>("isOpen"),
                           InstanceMethod<&XenVchan::FdForSelect>("fdForSelect"),
                           InstanceMethod<&XenVchan::Wait>("wait"),
                           InstanceMethod<&XenVchan::Close>("close"),
                           InstanceMethod<&XenVchan::RingSizes>("ringSizes"),
                       },
                       data);
  }

  explicit XenVchan(const Napi::CallbackInfo& info) : Napi::ObjectWrap<XenVchan>(info) {
    info.This().As<Napi::Object>().TypeTag(&kXenVchanTag);
  }

  ~XenVchan() override {
    if (ctrl_ != nullptr) libxenvchan_close(ctrl_);
  }

 private:
  static Napi::Value Wrap(const Napi::CallbackInfo& info, libxenvchan* ctrl) {
    AddonData* data = static_cast<AddonData*>(info.Data());
    Napi::Object object = data->xenVchanConstructor.New({});
    XenVchan* self = XenVchan::Unwrap(object);
    ctrl->blocking = 0;
    self->ctrl_ = ctrl;
    return object;
  }

  // serverInit(domain, xsPath, readMin, writeMin)
  static Napi::Value ServerInit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int domain = static_cast<int>(ArgInteger(info, 0, "domain", 0, 0x7fef));
    std::string path = ArgString(info, 1, "xsPath");
    size_t readMin = static_cast<size_t>(ArgInteger(info, 2, "readMin", 0, kMaxRing));
    size_t writeMin = static_cast<size_t>(ArgInteger(info, 3, "writeMin", 0, kMaxRing));
    errno = 0;
    libxenvchan* ctrl = libxenvchan_server_init(nullptr, domain, path.c_str(), readMin, writeMin);
    if (ctrl == nullptr) ThrowErrno(env, "libxenvchan_server_init", errno != 0 ? errno : EIO);
    return Wrap(info, ctrl);
  }

  // clientInit(domain, xsPath)
  static Napi::Value ClientInit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int domain = static_cast<int>(ArgInteger(info, 0, "domain", 0, 0x7fef));
    std::string path = ArgString(info, 1, "xsPath");
    errno = 0;
    libxenvchan* ctrl = libxenvchan_client_init(nullptr, domain, path.c_str());
    if (ctrl == nullptr) ThrowErrno(env, "libxenvchan_client_init", errno != 0 ? errno : EIO);
    return Wrap(info, ctrl);
  }

  libxenvchan* Checked(const Napi::CallbackInfo& info) {
    if (!info.This().IsObject() || !info.This().As<Napi::Object>().CheckTypeTag(&kXenVchanTag)) {
      ThrowType(info.Env(), "receiver is not a XenVchan");
    }
    if (ctrl_ == nullptr) ThrowErrno(info.Env(), "libxenvchan", EBADF);
    return ctrl_;
  }

  static Napi::Uint8Array ArgBytes(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      ThrowType(info.Env(), "data must be a Uint8Array");
    }
    return info[0].As<Napi::Uint8Array>();
  }

  Napi::Value Result(const Napi::CallbackInfo& info, const char* call, int rc) {
    if (rc < 0) ThrowErrno(info.Env(), call, errno != 0 ? errno : EPIPE);
    return Napi::Number::New(info.Env(), rc);
  }

  Napi::Value Read(const Napi::CallbackInfo& info) {
    libxenvchan* ctrl = Checked(info);
    Napi::Uint8Array bytes = ArgBytes(info);
    errno = 0;
    return Result(info, "libxenvchan_read", libxenvchan_read(ctrl, bytes.Data(), bytes.ByteLength()));
  }
  Napi::Value Write(const Napi::CallbackInfo& info) {
    libxenvchan* ctrl = Checked(info);
    Napi::Uint8Array bytes = ArgBytes(info);
    errno = 0;
    return Result(info, "libxenvchan_write", libxenvchan_write(ctrl, bytes.Data(), bytes.ByteLength()));
  }
  Napi::Value Recv(const Napi::CallbackInfo& info) {
    libxenvchan* ctrl = Checked(info);
    Napi::Uint8Array bytes = ArgBytes(info);
    errno = 0;
    return Result(info, "libxenvchan_recv", libxenvchan_recv(ctrl, bytes.Data(), bytes.ByteLength()));
  }
  Napi::Value Send(const Napi::CallbackInfo& info) {
    libxenvchan* ctrl = Checked(info);
    Napi::Uint8Array bytes = ArgBytes(info);
    errno = 0;
    return Result(info, "libxenvchan_send", libxenvchan_send(ctrl, bytes.Data(), bytes.ByteLength()));
  }
  Napi::Value DataReady(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), libxenvchan_data_ready(Checked(info)));
  }
  Napi::Value BufferSpace(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), libxenvchan_buffer_space(Checked(info)));
  }
  Napi::Value IsOpen(const Napi::CallbackInfo& info) {
    if (ctrl_ == nullptr) return Napi::Number::New(info.Env(), 0);
    return Napi::Number::New(info.Env(), libxenvchan_is_open(Checked(info)));
  }
  // ringSizes() -> [read ring bytes, write ring bytes], from libxenvchan's private copies of the orders.
  Napi::Value RingSizes(const Napi::CallbackInfo& info) {
    libxenvchan* ctrl = Checked(info);
    Napi::Array sizes = Napi::Array::New(info.Env(), 2);
    sizes.Set(0u, Napi::Number::New(info.Env(), static_cast<double>(INT64_C(1) << ctrl->read.order)));
    sizes.Set(1u, Napi::Number::New(info.Env(), static_cast<double>(INT64_C(1) << ctrl->write.order)));
    return sizes;
  }
  Napi::Value FdForSelect(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), libxenvchan_fd_for_select(Checked(info)));
  }
  // wait(): consumes the pending event after the fd polled readable (non-blocking mode).
  Napi::Value Wait(const Napi::CallbackInfo& info) {
    libxenvchan* ctrl = Checked(info);
    errno = 0;
    return Result(info, "libxenvchan_wait", libxenvchan_wait(ctrl));
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (!info.This().IsObject() || !info.This().As<Napi::Object>().CheckTypeTag(&kXenVchanTag)) {
      ThrowType(info.Env(), "receiver is not a XenVchan");
    }
    if (ctrl_ != nullptr) {
      libxenvchan_close(ctrl_);
      ctrl_ = nullptr;
    }
    return info.Env().Undefined();
  }

  libxenvchan* ctrl_ = nullptr;
};

#endif  // QUBES_HAVE_LIBXENVCHAN

}  // namespace

void InitXenVchan(Napi::Env env, Napi::Object exports, AddonData* data) {
  Napi::Object holder = Napi::Object::New(env);
#ifdef QUBES_HAVE_LIBXENVCHAN
  Napi::Function constructor = XenVchan::Define(env, data);
  data->xenVchanConstructor = Napi::Persistent(constructor);
  holder.Set("compiled", Napi::Boolean::New(env, true));
  holder.Set("XenVchan", constructor);
#else
  holder.Set("compiled", Napi::Boolean::New(env, false));
#endif
  exports.Set("xenVchan", holder);
}

}  // namespace qubes
