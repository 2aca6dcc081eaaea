/**
 * The agent end to end: real Wayland apps in the agent's compositor, a test
 * peer standing in for the daemon (our own decoder and grant mapping) on a
 * real vchan, and every byte the agent writes checked by qubes-gui-trace.
 * An app's first window is its readiness signal: that wait is as long as
 * start-up may take (READY_TIMEOUT_MS), and the bounded waits come after it.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

import { startAgent, type GuiAgent } from "../../gui-agent/index.ts";
import { requireProgram } from "../helpers/compositors.ts";
import { connectDaemonPeer, type DaemonPeer, type PeerWindow } from "../helpers/daemon-peer.ts";
import { PatternClient } from "../helpers/pattern-client.ts";
import { READY_TIMEOUT_MS, repoRoot, withStartup, within } from "../helpers/processes.ts";

const AGENT_DOMAIN = 5;
const GUI_DOMAIN = 0;
const KEY_PRESS = 2;
const KEY_RELEASE = 3;
const BUTTON_PRESS = 4;
const BUTTON_RELEASE = 5;
const FOCUS_IN = 9;

let dir: string;
let agent: GuiAgent;
let peer: DaemonPeer;
const children: ChildProcess[] = [];

/** A running app and what it printed so far. */
interface App {
  child: ChildProcess;
  output: () => string;
  waitForOutput: (pattern: RegExp, what: string, timeoutMs?: number) => Promise<RegExpMatchArray>;
}

function startApp(command: string, args: string[], extraEnv: Record<string, string> = {}): App {
  requireProgram(command);
  const child = spawn(command, args, {
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: dir,
      XDG_RUNTIME_DIR: dir,
      WAYLAND_DISPLAY: agent.compositor.socketPath,
      GDK_BACKEND: "wayland",
      ...extraEnv,
    },
    stdio: ["ignore", "pipe", "pipe"],
    cwd: dir,
  });
  children.push(child);
  let output = "";
  const listeners: Array<() => void> = [];
  const onData = (chunk: Buffer): void => {
    output += chunk.toString("utf8");
    for (const listener of [...listeners]) listener();
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  return {
    child,
    output: () => output,
    waitForOutput: (pattern, what, timeoutMs = 15_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const match = output.match(pattern);
          if (match !== null) {
            listeners.splice(listeners.indexOf(check), 1);
            clearTimeout(timer);
            resolve(match);
          }
        };
        const timer = setTimeout(() => {
          listeners.splice(listeners.indexOf(check), 1);
          reject(new Error(`timed out waiting for ${what}; ${command} printed:\n${output.slice(-2000)}`));
        }, timeoutMs);
        listeners.push(check);
        check();
      }),
  };
}

function stopApps(): void {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
}

/** Opens a pattern client's window and waits until the daemon stand-in shows it (a new window). */
async function openPatternWindow(
  title: string,
  width: number,
  height: number,
): Promise<{ client: PatternClient; window: PeerWindow }> {
  const known = new Set(peer.windows.keys());
  const client = await PatternClient.open(agent.compositor.socketPath, width, height, title);
  const window = await peer.waitForWindow((w) => w.title === title && !known.has(w.id), `the "${title}" window`);
  return { client, window };
}

/** Resolves once the client has received at least `count` xdg_toplevel configures. */
function configuresReceived(client: PatternClient, count: number): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (client.configures.length >= count) resolve();
    };
    client.toplevel.on("configure", () => queueMicrotask(check));
    check();
  });
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "qubes-agent-test-"));
  agent = await startAgent({
    guiDomain: GUI_DOMAIN,
    ownDomain: AGENT_DOMAIN,
    vchan: "socket",
    grants: "memfd",
    socketDir: dir,
    waylandDisplay: path.join(dir, "wayland-agent"),
    log: pino({ level: "silent" }),
  });
  peer = await connectDaemonPeer({ agentDomain: AGENT_DOMAIN, guiDomain: GUI_DOMAIN, socketDir: dir });
  // startAgent compiles its keymap with xkbcli: a process start.
}, withStartup(30_000));

afterEach(() => stopApps());

afterAll(() => {
  stopApps();
  peer?.close();
  agent?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("windows", { timeout: withStartup(30_000) }, () => {
  it("turns weston-simple-shm into CREATE, hints, title, class and MAP, then a dump and images whose pixels match", async () => {
    const app = startApp("weston-simple-shm", []);
    const window = await peer.waitForWindow((w) => w.title === "simple-shm", "simple-shm's window", READY_TIMEOUT_MS);
    const types = peer.received.filter((m) => m.window === window.id).map((m) => m.type);
    expect(types.slice(0, 4)).toEqual(["CREATE", "WINDOW_HINTS", "WMNAME", "WMCLASS"]);
    expect(types).toContain("MAP");
    expect(types.indexOf("WINDOW_DUMP")).toBeGreaterThan(types.indexOf("MAP"));
    expect(window.created.override_redirect).toBe(0);
    expect(window.resClass).toBe(window.resName);
    // The app keeps animating: frames keep coming and the pages keep changing.
    const before = agent.counters.frames;
    await peer.waitFor(() => agent.counters.frames > before + 20, "20 more frames");
    expect(peer.errors).toEqual([]);
    expect(app.child.exitCode).toBeNull();
  });

  it("closes a window on CLOSE and acknowledges its DESTROY before the id is free", async () => {
    const known = new Set(peer.windows.keys());
    const app = startApp("weston-simple-shm", []);
    // Listened for from the start: the app may end before the DESTROY is seen.
    const exited = new Promise<void>((resolve) => app.child.once("exit", () => resolve()));
    const window = await peer.waitForWindow(
      (w) => w.title === "simple-shm" && !known.has(w.id),
      "a new simple-shm window",
      READY_TIMEOUT_MS,
    );
    peer.send({ type: "CLOSE", window: window.id });
    await peer.waitFor(() => peer.messages("DESTROY", window.id).length > 0, "DESTROY after CLOSE");
    await within(exited, 15_000, "weston-simple-shm's exit after CLOSE");
    expect(peer.windows.get(window.id)?.destroyed).toBe(true);
  });
});

describe("input", { timeout: withStartup(30_000) }, () => {
  it("delivers KEYPRESS, BUTTON and MOTION to wev", async () => {
    // wev prints with stdio: line-buffer it so each event arrives as it happens.
    const app = startApp("stdbuf", ["-oL", "wev"]);
    const window = await peer.waitForWindow((w) => w.title === "wev", "wev's window", READY_TIMEOUT_MS);
    peer.send({ type: "FOCUS", window: window.id, event_type: FOCUS_IN, mode: 0, detail: 3 });
    await app.waitForOutput(/wl_keyboard\] enter/, "keyboard enter");
    peer.send({ type: "KEYPRESS", window: window.id, event_type: KEY_PRESS, x: 0, y: 0, state: 0, keycode: 38 });
    peer.send({ type: "KEYPRESS", window: window.id, event_type: KEY_RELEASE, x: 0, y: 0, state: 0, keycode: 38 });
    await app.waitForOutput(/sym: a\s+\(97\)/, "the key 'a'");
    peer.send({ type: "MOTION", window: window.id, x: 10, y: 12, state: 0, is_hint: 0 });
    await app.waitForOutput(/wl_pointer\] enter:[^\n]*x, y: 10\.0+, 12\.0+/, "pointer enter at 10,12");
    peer.send({ type: "BUTTON", window: window.id, event_type: BUTTON_PRESS, x: 10, y: 12, state: 0, button: 1 });
    peer.send({ type: "BUTTON", window: window.id, event_type: BUTTON_RELEASE, x: 10, y: 12, state: 0x100, button: 1 });
    await app.waitForOutput(/button: 272 \(left\), state: 1 \(pressed\)/, "left button press");
    await app.waitForOutput(/button: 272 \(left\), state: 0 \(released\)/, "left button release");
  });

  it("types into foot: text lands in a file through cat", async () => {
    const out = path.join(dir, "typed.txt");
    startApp("foot", ["-e", "sh", "-c", `cat > ${out}`]);
    const window = await peer.waitForWindow((w) => w.resClass === "foot", "foot's window", READY_TIMEOUT_MS);
    peer.send({ type: "FOCUS", window: window.id, event_type: FOCUS_IN, mode: 0, detail: 3 });
    // h i Return, then Ctrl+D ends cat.
    for (const keycode of [43, 31, 36]) {
      peer.send({ type: "KEYPRESS", window: window.id, event_type: KEY_PRESS, x: 0, y: 0, state: 0, keycode });
      peer.send({ type: "KEYPRESS", window: window.id, event_type: KEY_RELEASE, x: 0, y: 0, state: 0, keycode });
    }
    peer.send({ type: "KEYPRESS", window: window.id, event_type: KEY_PRESS, x: 0, y: 0, state: 0, keycode: 37 });
    peer.send({ type: "KEYPRESS", window: window.id, event_type: KEY_PRESS, x: 0, y: 0, state: 0x4, keycode: 40 });
    peer.send({ type: "KEYPRESS", window: window.id, event_type: KEY_RELEASE, x: 0, y: 0, state: 0x4, keycode: 40 });
    peer.send({ type: "KEYPRESS", window: window.id, event_type: KEY_RELEASE, x: 0, y: 0, state: 0x4, keycode: 37 });
    await peer.waitFor(() => peer.windows.get(window.id)?.destroyed, "foot to exit after Ctrl+D");
    expect(readFileSync(out, "utf8")).toBe("hi\n");
  });
});

describe("popups", { timeout: withStartup(30_000) }, () => {
  it("turns a GTK menu into an override-redirect window transient for its parent, placed below the menu bar", async () => {
    const known = new Set(peer.windows.keys());
    startApp("gtk3-demo", ["--run=menus"]);
    const menus = await peer.waitForWindow(
      (w) => w.title === "Menus" && !known.has(w.id),
      "gtk3-demo's Menus window",
      READY_TIMEOUT_MS,
    );
    expect(menus.overrideRedirect).toBe(false);
    expect(menus.resClass).toBe("gtk3-demo");
    peer.send({ type: "FOCUS", window: menus.id, event_type: FOCUS_IN, mode: 0, detail: 3 });
    // F10 (evdev 68, X keycode 76) opens the first menu of the menu bar.
    peer.send({ type: "KEYPRESS", window: menus.id, event_type: KEY_PRESS, x: 0, y: 0, state: 0, keycode: 76 });
    peer.send({ type: "KEYPRESS", window: menus.id, event_type: KEY_RELEASE, x: 0, y: 0, state: 0, keycode: 76 });
    const popup = await peer.waitForWindow((w) => w.overrideRedirect && w.transientFor === menus.id, "the menu popup");
    expect(popup.created.override_redirect).toBe(1);
    // Below the menu bar item: inside the parent horizontally, starting below its top edge.
    expect(popup.x).toBeGreaterThanOrEqual(menus.x);
    expect(popup.y).toBeGreaterThan(menus.y);
    expect(peer.messages("WMNAME", popup.id)).toEqual([]);
    // Escape closes the menu: the popup is destroyed.
    peer.send({ type: "KEYPRESS", window: menus.id, event_type: KEY_PRESS, x: 0, y: 0, state: 0, keycode: 9 });
    peer.send({ type: "KEYPRESS", window: menus.id, event_type: KEY_RELEASE, x: 0, y: 0, state: 0, keycode: 9 });
    await peer.waitFor(() => peer.windows.get(popup.id)?.destroyed, "the popup to go on Escape");
  });
});

describe("clipboard", { timeout: withStartup(30_000) }, () => {
  // Without a data-control protocol (not in this system's wayland-protocols),
  // wl-copy and wl-paste map a 1×1 "wl-clipboard" window and wait for keyboard
  // focus, as Wayland offers the selection only to the focused client: the
  // daemon focuses that window, as a user clicking it would.
  async function focusClipboardWindow(known: Set<number>): Promise<void> {
    const window = await peer.waitForWindow(
      (w) => w.title === "wl-clipboard" && !known.has(w.id),
      "wl-clipboard's window",
      READY_TIMEOUT_MS,
    );
    peer.send({ type: "FOCUS", window: window.id, event_type: FOCUS_IN, mode: 0, detail: 3 });
  }

  /** Resolves once the domain's selection holds text (checked now and at every change). */
  function selectionReady(): Promise<void> {
    const clipboard = agent.compositor.clipboard;
    return new Promise((resolve) => {
      let off = (): void => undefined;
      const check = (): void => {
        void clipboard.read(1).then((selection) => {
          if (selection === null || selection.data.length === 0) return;
          off();
          resolve();
        });
      };
      off = clipboard.events.change.add(check);
      check();
    });
  }

  it("answers CLIPBOARD_REQ with what wl-copy put in the domain's clipboard", async () => {
    requireProgram("wl-copy", "wl-clipboard");
    const known = new Set(peer.windows.keys());
    startApp("wl-copy", ["--foreground", "copied from the domain"]);
    await focusClipboardWindow(known);
    await selectionReady();
    const before = peer.messages("CLIPBOARD_DATA").length;
    peer.send({ type: "CLIPBOARD_REQ", window: 0 });
    const reply = await peer.waitFor(() => peer.messages("CLIPBOARD_DATA")[before], "CLIPBOARD_DATA");
    expect(new TextDecoder().decode(reply.data)).toBe("copied from the domain");
  });

  it("answers a clipboard over the 1.8 limit with exactly limit + 1 bytes", async () => {
    const known = new Set(peer.windows.keys());
    startApp("sh", ["-c", "head -c 300000 /dev/zero | tr '\\0' x | wl-copy --foreground"]);
    await focusClipboardWindow(known);
    await selectionReady();
    const before = peer.messages("CLIPBOARD_DATA").length;
    peer.send({ type: "CLIPBOARD_REQ", window: 0 });
    const reply = await peer.waitFor(() => peer.messages("CLIPBOARD_DATA")[before], "CLIPBOARD_DATA");
    expect(reply.data.length).toBe(256_001);
    expect(reply.data.every((byte) => byte === 0x78)).toBe(true);
  });

  it("makes CLIPBOARD_DATA the selection that wl-paste prints", async () => {
    peer.send({ type: "CLIPBOARD_DATA", window: 0, data: new TextEncoder().encode("pasted into the domain") });
    const known = new Set(peer.windows.keys());
    const paste = startApp("wl-paste", ["--no-newline"]);
    await focusClipboardWindow(known);
    const code = await new Promise<number | null>((resolve) => paste.child.once("exit", resolve));
    expect(paste.output()).toBe("pasted into the domain");
    expect(code).toBe(0);
  });
});

// qubes-gui-trace runs in its own node process: its start-up is allowed for by the guard.
describe("the bytes on the wire", { timeout: withStartup(10_000) }, () => {
  it("are all valid to qubes-gui-trace decode --from agent --handshake", () => {
    const file = path.join(dir, "agent-bytes.bin");
    writeFileSync(file, peer.rawBytes());
    const run = spawnSync(
      process.execPath,
      [path.join(repoRoot, "bin", "qubes-gui-trace.js"), "decode", "--from", "agent", "--handshake", file],
      {
        encoding: "utf8",
      },
    );
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    const lines = run.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { type: string });
    expect(lines[0]).toEqual({ type: "VERSION", version: 0x00010008 });
    expect(lines.length).toBe(peer.received.length + 1);
  });
});

describe("reconnect", { timeout: withStartup(30_000) }, () => {
  it("replays every window to a daemon that connects again, and the apps keep running", async () => {
    const app = startApp("weston-simple-shm", []);
    await peer.waitForWindow((w) => w.title === "simple-shm", "simple-shm before the reconnect", READY_TIMEOUT_MS);
    const gone = new Promise<void>((resolve) => agent.once("disconnected", () => resolve()));
    peer.close();
    await gone;
    expect(app.child.exitCode).toBeNull();
    peer = await connectDaemonPeer({ agentDomain: AGENT_DOMAIN, guiDomain: GUI_DOMAIN, socketDir: dir });
    const window = await peer.waitForWindow((w) => w.title === "simple-shm", "simple-shm replayed");
    const types = peer.received.filter((m) => m.window === window.id).map((m) => m.type);
    expect(types.slice(0, 9)).toEqual([
      "CREATE",
      "CONFIGURE",
      "WINDOW_DUMP",
      "WMCLASS",
      "WINDOW_HINTS",
      "MAP",
      "WMNAME",
      "WINDOW_FLAGS",
      "SHMIMAGE",
    ]);
    const before = agent.counters.frames;
    await peer.waitFor(() => agent.counters.frames > before + 5, "frames after the reconnect");
    expect(peer.errors).toEqual([]);
  });
});

describe("pixels and damage", () => {
  it("shows exactly what a client drew, and a 64×64 change copies 64×64×4 bytes and sends one SHMIMAGE", async () => {
    const { client, window } = await openPatternWindow("pattern 1080p", 1920, 1080);
    try {
      await peer.waitFor(() => peer.messages("SHMIMAGE", window.id).length > 0, "the first SHMIMAGE");
      const mismatch = (): string | undefined => {
        for (let y = 0; y < 1080; y++) {
          for (let x = 0; x < 1920; x++) {
            const got = peer.pixel(window, x, y) & 0xffffff;
            if (got !== client.expected(x, y))
              return `pixel ${x},${y} is ${got.toString(16)}, drawn ${client.expected(x, y).toString(16)}`;
          }
        }
        return undefined;
      };
      expect(mismatch()).toBeUndefined();

      const images = peer.messages("SHMIMAGE", window.id).length;
      const copied = agent.counters.bytesCopied;
      const dumps = peer.messages("WINDOW_DUMP", window.id).length;
      await client.commit({ x: 700, y: 300, width: 64, height: 64 });
      await peer.waitFor(() => peer.messages("SHMIMAGE", window.id).length > images, "the SHMIMAGE of the change");
      expect(peer.messages("SHMIMAGE", window.id).slice(images)).toEqual([
        { type: "SHMIMAGE", window: window.id, x: 700, y: 300, width: 64, height: 64 },
      ]);
      expect(agent.counters.bytesCopied - copied).toBe(64 * 64 * 4);
      expect(peer.messages("WINDOW_DUMP", window.id).length).toBe(dumps);
      expect(mismatch()).toBeUndefined();
    } finally {
      client.close();
    }
  });
});

describe("window state", { timeout: withStartup(30_000) }, () => {
  it("turns an app's set_fullscreen into WINDOW_FLAGS, and the daemon's WINDOW_FLAGS into a fullscreen configure", async () => {
    const { client, window } = await openPatternWindow("state", 200, 100);
    try {
      client.toplevel.request("set_fullscreen", null);
      const flags = await peer.waitFor(
        () => peer.messages("WINDOW_FLAGS", window.id).find((m) => m.flags_set === 1),
        "WINDOW_FLAGS setting FULLSCREEN",
      );
      expect(flags.flags_unset).toBe(0);
      const FULLSCREEN_STATE = 2;
      const count = client.configures.length;
      peer.send({ type: "WINDOW_FLAGS", window: window.id, flags_set: 0, flags_unset: 1 });
      peer.send({ type: "WINDOW_FLAGS", window: window.id, flags_set: 1, flags_unset: 0 });
      await configuresReceived(client, count + 2);
      expect(client.configures[count]?.states).not.toContain(FULLSCREEN_STATE);
      expect(client.configures[count + 1]?.states).toContain(FULLSCREEN_STATE);
    } finally {
      client.close();
    }
  });

  it("releases keys the host no longer holds on KEYMAP_NOTIFY", async () => {
    const app = startApp("stdbuf", ["-oL", "wev"]);
    const window = await peer.waitForWindow((w) => w.title === "wev", "wev's window", READY_TIMEOUT_MS);
    peer.send({ type: "FOCUS", window: window.id, event_type: FOCUS_IN, mode: 0, detail: 3 });
    await app.waitForOutput(/wl_keyboard\] enter/, "keyboard enter");
    peer.send({ type: "KEYPRESS", window: window.id, event_type: KEY_PRESS, x: 0, y: 0, state: 0, keycode: 50 });
    await app.waitForOutput(/key: 50; state: 1 \(pressed\)/, "Shift pressed");
    // The host says: no key is down (Shift went up while another window had focus).
    peer.send({ type: "KEYMAP_NOTIFY", window: 0, keys: new Uint8Array(32) });
    await app.waitForOutput(/key: 50; state: 0 \(released\)/, "Shift released");
  });
});

describe("limits", () => {
  it("shows the top-left 16384×6144 of a window wider than the protocol allows, and the app keeps drawing", async () => {
    const { client, window } = await openPatternWindow("too wide", 16400, 2);
    try {
      expect(window.created.width).toBe(16384);
      const dump = peer.messages("WINDOW_DUMP", window.id)[0];
      expect([dump?.width, dump?.height]).toEqual([16384, 2]);
      expect(peer.pixel(window, 16383, 1) & 0xffffff).toBe(client.expected(16383, 1));
      // The app is not stalled: its next frame is shown too.
      const images = peer.messages("SHMIMAGE", window.id).length;
      await client.commit({ x: 16380, y: 0, width: 20, height: 2 });
      const image = await peer.waitFor(() => peer.messages("SHMIMAGE", window.id)[images], "the next SHMIMAGE");
      expect(image).toMatchObject({ x: 16380, y: 0, width: 4, height: 2 });
    } finally {
      client.close();
    }
  });
});

describe("configure handshake", () => {
  it("tells the daemon the real size when an app keeps its own size after a CONFIGURE", async () => {
    const { client, window } = await openPatternWindow("fixed size", 200, 100);
    try {
      const before = peer.messages("CONFIGURE", window.id).length;
      const configured = client.configures.length;
      peer.send({ type: "CONFIGURE", window: window.id, x: 30, y: 40, width: 800, height: 600, override_redirect: 0 });
      // The agent acknowledges with the daemon's own values at once...
      const echo = await peer.waitFor(() => peer.messages("CONFIGURE", window.id)[before], "the echo");
      expect(echo).toMatchObject({ x: 30, y: 40, width: 800, height: 600 });
      // ...asks the app for 800×600, which acks it and draws at 200×100 anyway.
      await configuresReceived(client, configured + 1);
      expect(client.configures.at(-1)).toMatchObject({ width: 800, height: 600 });
      await client.commit({ x: 0, y: 0, width: 10, height: 10 });
      const corrected = await peer.waitFor(() => peer.messages("CONFIGURE", window.id)[before + 1], "the correction");
      expect(corrected).toMatchObject({ x: 30, y: 40, width: 200, height: 100 });
    } finally {
      client.close();
    }
  });
});

describe("cursors", () => {
  it("sends each window its cursor when the pointer moves between two windows of one app kind", async () => {
    const first = await openPatternWindow("cursor A", 100, 100);
    const second = await openPatternWindow("cursor B", 100, 100);
    try {
      first.client.useCursorImage();
      second.client.useCursorImage();
      await first.client.connection.roundtrip();
      await second.client.connection.roundtrip();
      peer.send({ type: "MOTION", window: first.window.id, x: 5, y: 5, state: 0, is_hint: 0 });
      const a = await peer.waitFor(() => peer.messages("CURSOR", first.window.id)[0], "A's cursor");
      peer.send({
        type: "CROSSING",
        window: first.window.id,
        event_type: 8,
        x: 5,
        y: 5,
        state: 0,
        mode: 0,
        detail: 0,
        focus: 0,
      });
      peer.send({ type: "MOTION", window: second.window.id, x: 5, y: 5, state: 0, is_hint: 0 });
      const b = await peer.waitFor(() => peer.messages("CURSOR", second.window.id)[0], "B's cursor");
      // An app's own cursor image cannot be named: the host's default pointer.
      expect([a.cursor, b.cursor]).toEqual([0, 0]);
    } finally {
      first.client.close();
      second.client.close();
    }
  });
});
