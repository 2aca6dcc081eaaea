/**
 * vchan/: the libvchan API (server/client, read/write/send/recv,
 * dataReady/bufferSpace, readiness events, isOpen, close) over three
 * backends: `socket` (byte-compatible with qubes-core-vchan-socket), `shm`
 * (libxenvchan's ring layout on granted pages, eventfds as the event channel)
 * and `xen` (libxenvchan). The gui-agent is a server on port 6000, guid its
 * client; both stay the same whatever the backend.
 */
import { connectShmClient, createShmServer, type ShmVchanExtra } from "./shm.ts";
import { connectSocketClient, createSocketServer } from "./socket.ts";
import type { Vchan, VchanBackend, VchanClientOptions, VchanServerOptions } from "./types.ts";
import { connectXenClient, createXenServer, xenVchanAvailability } from "./xen.ts";

export {
  VCHAN_CONNECTED,
  VCHAN_DISCONNECTED,
  VCHAN_WAITING,
  type Vchan,
  type VchanBackend,
  type VchanClientOptions,
  type VchanEvents,
  type VchanServerOptions,
  type VchanState,
} from "./types.ts";
export { VchanError, type VchanErrorCode } from "./errors.ts";
export { VchanWriter, type WriterFailure } from "./writer.ts";
export { ByteRing } from "./byte-ring.ts";
export {
  MAX_RING_SIZE,
  SOCKET_CLIENT_RING_SIZE,
  SocketVchan,
  connectSocketClient,
  createSocketServer,
  vchanSocketPath,
} from "./socket.ts";
export { ShmVchan, connectShmClient, createShmServer, shmVchanSocketPath, type ShmVchanExtra } from "./shm.ts";
export { EVTCHN_DEVICE, XenVchanChannel, connectXenClient, createXenServer, xenVchanAvailability } from "./xen.ts";
export {
  CLI_LIVE,
  CLI_NOTIFY,
  CONTROL_PAGE_SIZE,
  GRANTS,
  LEFT_CONS,
  LEFT_ORDER,
  LEFT_PROD,
  RIGHT_CONS,
  RIGHT_ORDER,
  RIGHT_PROD,
  SRV_LIVE,
  SRV_NOTIFY,
  VCHAN_NOTIFY_READ,
  VCHAN_NOTIFY_WRITE,
  checkOrders,
  chooseOrders,
} from "./layout.ts";

/** The backend used when none is named: `xen` where it runs, else `socket` (what upstream builds off Xen). */
export function defaultVchanBackend(): VchanBackend {
  return xenVchanAvailability().available ? "xen" : "socket";
}

/**
 * libvchan_server_init: starts a server for `domain` on `port`, returned at
 * once in state VCHAN_WAITING; listen for `connect` or await whenConnected().
 */
export function createVchanServer(options: VchanServerOptions & ShmVchanExtra): Vchan {
  const backend = options.backend ?? defaultVchanBackend();
  if (backend === "socket") return createSocketServer(options);
  if (backend === "shm") return createShmServer(options);
  return createXenServer(options);
}

/** libvchan_client_init: connects to `domain`'s server on `port`, waiting until it exists. */
export function connectVchanClient(options: VchanClientOptions & ShmVchanExtra): Promise<Vchan> {
  const backend = options.backend ?? defaultVchanBackend();
  if (backend === "socket") return connectSocketClient(options);
  if (backend === "shm") return connectShmClient(options);
  return connectXenClient(options);
}
