/**
 * One byte-exact fixture per message type (and the handshake), built with the
 * independent ByteBuilder from the layouts of qubes-gui-protocol.md 1.6, with
 * the message each must decode to.
 */
import type { Decoded, Side } from "../../protocol/index.ts";
import { bytes, fixedText, fromHex } from "./bytes.ts";

/** A fixture: the bytes one side sends and what they mean. */
export interface Fixture {
  name: string;
  from: Side;
  /** Negotiated version for decoding (default 1.8). */
  version?: number;
  bytes: Uint8Array;
  message: Decoded;
}

const keys = new Uint8Array(32);
keys[0] = 0x01;
keys[4] = 0x80;
keys[31] = 0xff;
const cmd = fixedText("xterm", 255);

/** All fixtures; every one of the 26 message types appears at least once. */
export const fixtures: Fixture[] = [
  {
    name: "the reference's CREATE example (window 0x00400001, 300x200 at 100,100)",
    from: "agent",
    bytes: fromHex("82000000 01004000 18000000 | 64000000 64000000 2c010000 c8000000 00000000 00000000"),
    message: {
      type: "CREATE",
      window: 0x00400001,
      x: 100,
      y: 100,
      width: 300,
      height: 200,
      parent: 0,
      override_redirect: 0,
    },
  },
  {
    name: "KEYPRESS of keycode 38 with Shift",
    from: "daemon",
    bytes: bytes().header(124, 0x400001, 20).u32(2).i32(-5).i32(7).u32(1).u32(38).build(),
    message: { type: "KEYPRESS", window: 0x400001, event_type: 2, x: -5, y: 7, state: 1, keycode: 38 },
  },
  {
    name: "BUTTON release of button 3",
    from: "daemon",
    bytes: bytes().header(125, 0x400001, 20).u32(5).i32(10).i32(20).u32(0x400).u32(3).build(),
    message: { type: "BUTTON", window: 0x400001, event_type: 5, x: 10, y: 20, state: 0x400, button: 3 },
  },
  {
    name: "MOTION to -1,-2147483648",
    from: "daemon",
    bytes: bytes().header(126, 0x400001, 16).i32(-1).i32(-0x80000000).u32(0).u32(1).build(),
    message: { type: "MOTION", window: 0x400001, x: -1, y: -0x80000000, state: 0, is_hint: 1 },
  },
  {
    name: "CROSSING EnterNotify",
    from: "daemon",
    bytes: bytes().header(127, 0x400001, 28).u32(7).i32(3).i32(4).u32(0).u32(0).u32(3).u32(1).build(),
    message: { type: "CROSSING", window: 0x400001, event_type: 7, x: 3, y: 4, state: 0, mode: 0, detail: 3, focus: 1 },
  },
  {
    name: "FOCUS FocusIn",
    from: "daemon",
    bytes: bytes().header(128, 0x400001, 12).u32(9).u32(0).u32(3).build(),
    message: { type: "FOCUS", window: 0x400001, event_type: 9, mode: 0, detail: 3 },
  },
  {
    name: "obsolete RESIZE",
    from: "daemon",
    bytes: bytes().header(129, 0x400001, 8).u32(640).u32(480).build(),
    message: { type: "RESIZE", window: 0x400001, width: 640, height: 480 },
  },
  {
    name: "DESTROY from the agent",
    from: "agent",
    bytes: bytes().header(131, 0x400001, 0).build(),
    message: { type: "DESTROY", window: 0x400001 },
  },
  {
    name: "DESTROY acknowledgement from the daemon",
    from: "daemon",
    bytes: bytes().header(131, 0x400001, 0).build(),
    message: { type: "DESTROY", window: 0x400001 },
  },
  {
    name: "MAP transient for 0x400002, override-redirect",
    from: "agent",
    bytes: bytes().header(132, 0x400001, 8).u32(0x400002).u32(1).build(),
    message: { type: "MAP", window: 0x400001, transient_for: 0x400002, override_redirect: 1 },
  },
  {
    name: "MAP from the daemon",
    from: "daemon",
    bytes: bytes().header(132, 0x400001, 8).u32(0xdeadbeef).u32(0).build(),
    message: { type: "MAP", window: 0x400001, transient_for: 0xdeadbeef, override_redirect: 0 },
  },
  {
    name: "UNMAP",
    from: "agent",
    bytes: bytes().header(133, 0x400001, 0).build(),
    message: { type: "UNMAP", window: 0x400001 },
  },
  {
    name: "CONFIGURE to -20,30 640x480",
    from: "agent",
    bytes: bytes().header(134, 0x400001, 20).i32(-20).i32(30).u32(640).u32(480).u32(0).build(),
    message: { type: "CONFIGURE", window: 0x400001, x: -20, y: 30, width: 640, height: 480, override_redirect: 0 },
  },
  {
    name: "CONFIGURE from the daemon",
    from: "daemon",
    bytes: bytes().header(134, 0x400001, 20).i32(0).i32(0).u32(800).u32(600).u32(0).build(),
    message: { type: "CONFIGURE", window: 0x400001, x: 0, y: 0, width: 800, height: 600, override_redirect: 0 },
  },
  {
    name: "deprecated MFNDUMP with 2 frames",
    from: "agent",
    bytes: bytes()
      .header(135, 0x400001, 36)
      .u32(0)
      .u32(32)
      .u32(32)
      .u32(24)
      .u32(0)
      .u32(2)
      .u32(0)
      .u32(0x1234)
      .u32(0x5678)
      .build(),
    message: {
      type: "MFNDUMP",
      window: 0x400001,
      shmid: 0,
      width: 32,
      height: 32,
      bpp: 24,
      off: 0,
      num_mfn: 2,
      domid: 0,
      mfns: Uint32Array.of(0x1234, 0x5678),
    },
  },
  {
    name: "SHMIMAGE 0,0 64x48",
    from: "agent",
    bytes: bytes().header(136, 0x400001, 16).i32(0).i32(0).u32(64).u32(48).build(),
    message: { type: "SHMIMAGE", window: 0x400001, x: 0, y: 0, width: 64, height: 48 },
  },
  {
    name: "CLOSE",
    from: "daemon",
    bytes: bytes().header(137, 0x400001, 0).build(),
    message: { type: "CLOSE", window: 0x400001 },
  },
  {
    name: "obsolete EXECUTE",
    from: "daemon",
    bytes: bytes().header(138, 0, 255).text("xterm", 255).build(),
    message: { type: "EXECUTE", window: 0, cmd },
  },
  {
    name: "CLIPBOARD_REQ",
    from: "daemon",
    bytes: bytes().header(139, 0x400001, 0).build(),
    message: { type: "CLIPBOARD_REQ", window: 0x400001 },
  },
  {
    name: "CLIPBOARD_DATA of 5 bytes from the agent",
    from: "agent",
    bytes: bytes().header(140, 0x400001, 5).raw([0x68, 0x65, 0x6c, 0x6c, 0x6f]).build(),
    message: { type: "CLIPBOARD_DATA", window: 0x400001, data: Uint8Array.of(0x68, 0x65, 0x6c, 0x6c, 0x6f) },
  },
  {
    name: "empty CLIPBOARD_DATA from the daemon",
    from: "daemon",
    bytes: bytes().header(140, 0x400001, 0).build(),
    message: { type: "CLIPBOARD_DATA", window: 0x400001, data: new Uint8Array(0) },
  },
  {
    name: "CLIPBOARD_DATA at 1.1, length in window",
    from: "agent",
    version: 0x00010001,
    bytes: bytes().header(140, 3, 3).raw([1, 2, 3]).build(),
    message: { type: "CLIPBOARD_DATA", window: 3, data: Uint8Array.of(1, 2, 3) },
  },
  {
    name: "WMNAME with an ellipsis",
    from: "agent",
    bytes: bytes().header(141, 0x400001, 128).text("Terminal…", 128).build(),
    message: { type: "WMNAME", window: 0x400001, data: fixedText("Terminal…", 128) },
  },
  {
    name: "KEYMAP_NOTIFY",
    from: "daemon",
    bytes: bytes().header(142, 0, 32).raw(keys).build(),
    message: { type: "KEYMAP_NOTIFY", window: 0, keys },
  },
  {
    name: "DOCK",
    from: "agent",
    bytes: bytes().header(143, 0x400001, 0).build(),
    message: { type: "DOCK", window: 0x400001 },
  },
  {
    name: "WINDOW_HINTS with min and max size",
    from: "agent",
    bytes: bytes()
      .header(144, 0x400001, 36)
      .u32(48)
      .u32(100)
      .u32(50)
      .u32(1000)
      .u32(800)
      .u32(0)
      .u32(0)
      .u32(0)
      .u32(0)
      .build(),
    message: {
      type: "WINDOW_HINTS",
      window: 0x400001,
      flags: 48,
      min_width: 100,
      min_height: 50,
      max_width: 1000,
      max_height: 800,
      width_inc: 0,
      height_inc: 0,
      base_width: 0,
      base_height: 0,
    },
  },
  {
    name: "WINDOW_FLAGS setting fullscreen",
    from: "agent",
    bytes: bytes().header(145, 0x400001, 8).u32(1).u32(2).build(),
    message: { type: "WINDOW_FLAGS", window: 0x400001, flags_set: 1, flags_unset: 2 },
  },
  {
    name: "WINDOW_FLAGS from the daemon",
    from: "daemon",
    bytes: bytes().header(145, 0x400001, 8).u32(0).u32(1).build(),
    message: { type: "WINDOW_FLAGS", window: 0x400001, flags_set: 0, flags_unset: 1 },
  },
  {
    name: "WMCLASS class then name",
    from: "agent",
    bytes: bytes().header(146, 0x400001, 128).text("XTerm", 64).text("xterm", 64).build(),
    message: { type: "WMCLASS", window: 0x400001, res_class: fixedText("XTerm", 64), res_name: fixedText("xterm", 64) },
  },
  {
    name: "WINDOW_DUMP of 64x48 in 3 pages",
    from: "agent",
    bytes: bytes().header(147, 0x400001, 28).u32(0).u32(64).u32(48).u32(32).u32(7).u32(8).u32(0xffffffff).build(),
    message: {
      type: "WINDOW_DUMP",
      window: 0x400001,
      dump_type: 0,
      width: 64,
      height: 48,
      bpp: 32,
      grant_refs: Uint32Array.of(7, 8, 0xffffffff),
    },
  },
  {
    name: "CURSOR left_ptr",
    from: "agent",
    bytes: bytes()
      .header(148, 0x400001, 4)
      .u32(0x100 + 68)
      .build(),
    message: { type: "CURSOR", window: 0x400001, cursor: 0x144 },
  },
  {
    name: "WINDOW_DUMP_ACK",
    from: "daemon",
    bytes: bytes().header(149, 0x400001, 0).build(),
    message: { type: "WINDOW_DUMP_ACK", window: 0x400001 },
  },
];
