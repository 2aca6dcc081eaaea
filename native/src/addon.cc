// Entry point of the qubes_native addon: memfd/mmap, eventfd, libuv polling,
// AF_UNIX sockets with SCM_RIGHTS, Xen grant devices, and strided copies.
// The TypeScript contract is native/addon.d.ts.
#include "common.h"

namespace qubes {

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports) {
    InitErrors(env, exports);
    InitMemory(env, exports);
    InitEventfd(env, exports);
    InitPoll(env, exports, &data_);
    InitSockets(env, exports);
    InitXen(env, exports);
    InitRuns(env, exports);
    InitXenVchan(env, exports, &data_);
    InitCopy(env, exports);
  }

 private:
  AddonData data_;
};

}  // namespace qubes

using QubesAddon = qubes::Addon;
NODE_API_ADDON(QubesAddon)
