/**
 * wl_seat with a pointer and a keyboard, driven by the Qubes side through
 * {@link SeatControl}: keyboard focus (given to the topmost grabbing popup
 * of the focused window, as xdg-shell asks), keys with modifiers that follow
 * the keymap's modifier keys, pointer enter/leave/motion/button/axis at
 * window coordinates with hit-testing of subsurfaces and input regions,
 * popup grabs dismissed by a click on another app, and cursor requests.
 */
import {
  closeFd,
  createKeymapFd,
  Signal,
  wl_keyboard,
  wl_pointer,
  wl_seat,
  type Client,
  type Display,
  type Resource,
} from "../wayland/index.ts";
import type { SeatControl, ShellWindow } from "./api.ts";
import { PopupWindow } from "./popup.ts";
import { ShellWindowImpl } from "./shell-window.ts";
import { placedSurfaces, surfaceOf, type Surface } from "./surface.ts";

/** X modifier bits of the keys that lock rather than hold (Caps Lock's Lock, Num Lock's Mod2). */
const LOCKING_BITS = 0x2 | 0x10;

/** wl_pointer.axis_source.wheel. */
const AXIS_SOURCE_WHEEL = 0;

/** Scroll distance of one wheel step, in surface pixels (what libinput reports for a click). */
const AXIS_STEP = 15;

/** What the seat tells the rest of the compositor. */
export interface SeatHooks {
  /** Keyboard focus is about to enter a surface of `client` (the data device offers the selection first), or left every client (null). */
  keyboardFocusClient(client: Client | null): void;
  /** The live windows (to find grabbing popups). */
  windows(): readonly ShellWindowImpl[];
}

/** The seat: wl_seat global, per-client pointers and keyboards, and the {@link SeatControl} the Qubes side uses. */
export class Seat implements SeatControl {
  focused: ShellWindowImpl | null = null;
  readonly pressedKeys = new Set<number>();
  readonly events = { cursor: new Signal<{ window: ShellWindow | null; name: string | null }>() };

  private readonly display: Display;
  private readonly hooks: SeatHooks;
  private readonly modifierKeys: ReadonlyMap<number, number>;
  private readonly keymap: { fd: number; size: number };
  private readonly keyboards = new Map<Client, Set<Resource<"wl_keyboard">>>();
  private readonly pointers = new Map<Client, Set<Resource<"wl_pointer">>>();
  private keyboardSurface: Surface | null = null;
  private pointerSurface: Surface | null = null;
  private pointerWindow: ShellWindowImpl | null = null;
  private pointerX = 0;
  private pointerY = 0;
  private modifiers = { depressed: 0, latched: 0, locked: 0, group: 0 };
  private readonly start = performance.now();

  constructor(display: Display, keymap: { text: string; modifierKeys: ReadonlyMap<number, number> }, hooks: SeatHooks) {
    this.display = display;
    this.hooks = hooks;
    this.modifierKeys = keymap.modifierKeys;
    this.keymap = createKeymapFd(keymap.text);
    display.createGlobal("wl_seat", 8, (seat) => this.bind(seat));
  }

  /** Closes the keymap fd. */
  destroy(): void {
    closeFd(this.keymap.fd);
  }

  private time(): number {
    return Math.floor(performance.now() - this.start) >>> 0;
  }

  private bind(seat: Resource<"wl_seat">): void {
    const client = seat.client;
    seat.implement({
      release: () => undefined,
      get_pointer: (pointer) => {
        add(this.pointers, client, pointer);
        pointer.implement({
          release: () => undefined,
          set_cursor: (_serial, surfaceResource) => this.setCursor(pointer, surfaceResource),
        });
        const focus = this.pointerSurface;
        if (focus !== null && focus.client === client) {
          pointer.send("enter", this.display.nextSerial(), focus.resource, this.pointerX, this.pointerY);
          if (pointer.version >= 5) pointer.send("frame");
        }
      },
      get_keyboard: (keyboard) => {
        add(this.keyboards, client, keyboard);
        keyboard.implement({ release: () => undefined });
        keyboard.send("keymap", wl_keyboard.enums.keymap_format.xkb_v1, this.keymap.fd, this.keymap.size);
        // The host repeats keys itself (it sends each repeat as a KEYPRESS): no client-side repeat.
        if (keyboard.version >= 4) keyboard.send("repeat_info", 0, 0);
        const focus = this.keyboardSurface;
        if (focus !== null && focus.client === client) {
          keyboard.send("enter", this.display.nextSerial(), focus.resource, this.keysArray());
          this.sendModifiersTo(keyboard);
        }
      },
      get_touch: (touch) => {
        touch.implement({ release: () => undefined });
      },
    });
    const caps = wl_seat.enums.capability;
    seat.send("capabilities", caps.pointer | caps.keyboard);
    if (seat.version >= 2) seat.send("name", "seat0");
  }

  focus(window: ShellWindow | null): void {
    const next = window instanceof ShellWindowImpl && !window.destroyed ? window : null;
    if (next === this.focused) return;
    this.focused = next;
    const root = next === null ? null : rootOf(next);
    for (const popup of this.hooks.windows()) {
      if (popup instanceof PopupWindow && popup.grabbed && rootOf(popup) !== root) popup.dismiss();
    }
    this.updateKeyboardFocus();
  }

  /** Recomputes which surface has keyboard focus (after focus, map, unmap, grab or destroy). */
  updateKeyboardFocus(): void {
    const target = this.keyboardTarget();
    if (target === this.keyboardSurface) return;
    const old = this.keyboardSurface;
    if (old !== null && !old.destroyed) {
      const serial = this.display.nextSerial();
      for (const keyboard of this.keyboards.get(old.client) ?? []) keyboard.send("leave", serial, old.resource);
    }
    this.keyboardSurface = target;
    if (target === null) {
      this.hooks.keyboardFocusClient(null);
      return;
    }
    if (old === null || old.client !== target.client) this.hooks.keyboardFocusClient(target.client);
    const serial = this.display.nextSerial();
    const keys = this.keysArray();
    for (const keyboard of this.keyboards.get(target.client) ?? []) {
      keyboard.send("enter", serial, target.resource, keys);
      this.sendModifiersTo(keyboard);
    }
  }

  private keyboardTarget(): Surface | null {
    const focused = this.focused;
    if (focused === null || focused.destroyed || !focused.mapped) return null;
    let window: ShellWindowImpl = focused;
    for (;;) {
      const next: ShellWindowImpl | undefined = topGrabbingChild(window);
      if (next === undefined) break;
      window = next;
    }
    return window.surface.destroyed ? null : window.surface;
  }

  /** A window is gone: focus and pointer let go of it. */
  windowDestroyed(window: ShellWindowImpl): void {
    if (this.keyboardSurface === window.surface) {
      if (!window.surface.destroyed) {
        const serial = this.display.nextSerial();
        for (const keyboard of this.keyboards.get(window.client) ?? [])
          keyboard.send("leave", serial, window.surface.resource);
      }
      this.keyboardSurface = null;
    }
    if (this.focused === window) this.focused = null;
    if (this.pointerWindow === window) this.pointerLeave();
    this.updateKeyboardFocus();
  }

  /** A surface is gone: forget it without events (the client destroyed it). */
  surfaceDestroyed(surface: Surface): void {
    if (this.keyboardSurface === surface) this.keyboardSurface = null;
    if (this.pointerSurface === surface) {
      this.pointerSurface = null;
      this.pointerWindow = null;
    }
  }

  /** A client is gone: drop its devices. */
  clientDestroyed(client: Client): void {
    this.keyboards.delete(client);
    this.pointers.delete(client);
  }

  private keysArray(): Uint8Array {
    const bytes = new Uint8Array(this.pressedKeys.size * 4);
    const view = new DataView(bytes.buffer);
    let i = 0;
    for (const code of this.pressedKeys) view.setUint32(4 * i++, code, true);
    return bytes;
  }

  private sendModifiersTo(keyboard: Resource<"wl_keyboard">): void {
    const m = this.modifiers;
    keyboard.send("modifiers", this.display.nextSerial(), m.depressed, m.latched, m.locked, m.group);
  }

  private sendModifiers(): void {
    const focus = this.keyboardSurface;
    if (focus === null) return;
    const m = this.modifiers;
    const serial = this.display.nextSerial();
    for (const keyboard of this.keyboards.get(focus.client) ?? []) {
      keyboard.send("modifiers", serial, m.depressed, m.latched, m.locked, m.group);
    }
  }

  key(code: number, pressed: boolean): void {
    if (!Number.isInteger(code) || code < 0 || code > 0xffff) return;
    if (pressed === this.pressedKeys.has(code)) return;
    if (pressed) this.pressedKeys.add(code);
    else this.pressedKeys.delete(code);
    const focus = this.keyboardSurface;
    if (focus !== null) {
      const serial = this.display.nextSerial();
      const time = this.time();
      const state = pressed ? wl_keyboard.enums.key_state.pressed : wl_keyboard.enums.key_state.released;
      for (const keyboard of this.keyboards.get(focus.client) ?? []) keyboard.send("key", serial, time, code, state);
    }
    const bit = this.modifierKeys.get(code);
    if (bit === undefined) return;
    const m = { ...this.modifiers };
    if ((bit & LOCKING_BITS) !== 0) {
      if (pressed) m.locked ^= bit;
    } else if (pressed) {
      m.depressed |= bit;
    } else {
      let held = false;
      for (const other of this.pressedKeys) if (this.modifierKeys.get(other) === bit) held = true;
      if (!held) m.depressed &= ~bit;
    }
    this.applyModifiers(m);
  }

  setModifiers(depressed: number, latched: number, locked: number, group: number): void {
    this.applyModifiers({
      depressed: depressed >>> 0,
      latched: latched >>> 0,
      locked: locked >>> 0,
      group: group >>> 0,
    });
  }

  private applyModifiers(m: { depressed: number; latched: number; locked: number; group: number }): void {
    const old = this.modifiers;
    if (
      old.depressed === m.depressed &&
      old.latched === m.latched &&
      old.locked === m.locked &&
      old.group === m.group
    ) {
      return;
    }
    this.modifiers = m;
    this.sendModifiers();
  }

  pointerMove(window: ShellWindow, x: number, y: number): void {
    if (!Number.isFinite(x) || !Number.isFinite(y)) return;
    if (!(window instanceof ShellWindowImpl) || window.destroyed || !window.mapped) {
      this.pointerLeave();
      return;
    }
    const hit = hitTest(window, x, y);
    if (hit === null) {
      this.pointerLeave();
      return;
    }
    this.pointerX = hit.x;
    this.pointerY = hit.y;
    if (hit.surface !== this.pointerSurface) {
      this.pointerLeave();
      this.pointerSurface = hit.surface;
      this.pointerWindow = window;
      const serial = this.display.nextSerial();
      for (const pointer of this.pointers.get(hit.surface.client) ?? []) {
        pointer.send("enter", serial, hit.surface.resource, hit.x, hit.y);
        if (pointer.version >= 5) pointer.send("frame");
      }
      return;
    }
    this.pointerWindow = window;
    const time = this.time();
    for (const pointer of this.pointers.get(hit.surface.client) ?? []) {
      pointer.send("motion", time, hit.x, hit.y);
      if (pointer.version >= 5) pointer.send("frame");
    }
  }

  pointerLeave(): void {
    const surface = this.pointerSurface;
    this.pointerSurface = null;
    this.pointerWindow = null;
    if (surface === null || surface.destroyed) return;
    const serial = this.display.nextSerial();
    for (const pointer of this.pointers.get(surface.client) ?? []) {
      pointer.send("leave", serial, surface.resource);
      if (pointer.version >= 5) pointer.send("frame");
    }
  }

  pointerButton(code: number, pressed: boolean): void {
    if (!Number.isInteger(code) || code < 0 || code > 0xffff) return;
    const surface = this.pointerSurface;
    if (pressed) {
      // A click outside the grabbing app's surfaces ends its popup grab.
      for (const popup of this.hooks.windows()) {
        if (popup instanceof PopupWindow && popup.grabbed && (surface === null || popup.client !== surface.client)) {
          if (!(popup.parent instanceof PopupWindow && popup.parent.grabbed)) popup.dismiss();
        }
      }
    }
    if (surface === null) return;
    const serial = this.display.nextSerial();
    const time = this.time();
    const state = pressed ? wl_pointer.enums.button_state.pressed : wl_pointer.enums.button_state.released;
    for (const pointer of this.pointers.get(surface.client) ?? []) {
      pointer.send("button", serial, time, code, state);
      if (pointer.version >= 5) pointer.send("frame");
    }
  }

  pointerAxis(axis: number, discrete: number): void {
    const surface = this.pointerSurface;
    if (surface === null || (axis !== 0 && axis !== 1) || !Number.isInteger(discrete) || discrete === 0) return;
    const steps = Math.max(-100, Math.min(100, discrete));
    const time = this.time();
    for (const pointer of this.pointers.get(surface.client) ?? []) {
      if (pointer.version >= 5) pointer.send("axis_source", AXIS_SOURCE_WHEEL);
      if (pointer.version >= 8) pointer.send("axis_value120", axis, steps * 120);
      else if (pointer.version >= 5) pointer.send("axis_discrete", axis, steps);
      pointer.send("axis", time, axis, steps * AXIS_STEP);
      if (pointer.version >= 5) pointer.send("frame");
    }
  }

  private setCursor(pointer: Resource<"wl_pointer">, surfaceResource: Resource<"wl_surface"> | null): void {
    const focus = this.pointerSurface;
    if (focus === null || focus.client !== pointer.client) return;
    if (surfaceResource !== null) {
      const surface = surfaceOf(surfaceResource);
      if (surface.role !== null && surface.role !== "cursor") {
        pointer.postError(
          wl_pointer.enums.error.role,
          `wl_surface@${surfaceResource.id} already has the role ${surface.role}`,
        );
        return;
      }
      surface.role = "cursor";
    }
    this.events.cursor.emit({ window: this.pointerWindow, name: surfaceResource === null ? null : "default" });
  }
}

function add<I extends string>(map: Map<Client, Set<Resource<I>>>, client: Client, resource: Resource<I>): void {
  let set = map.get(client);
  if (set === undefined) {
    set = new Set();
    map.set(client, set);
  }
  set.add(resource);
  resource.events.destroy.add(() => set.delete(resource));
}

/** The last-made child popup of `window` that holds a grab and is shown. */
function topGrabbingChild(window: ShellWindowImpl): PopupWindow | undefined {
  let found: PopupWindow | undefined;
  for (const popup of window.popups) if (popup.grabbed && popup.mapped && !popup.destroyed) found = popup;
  return found;
}

/** The toplevel a window (or popup chain) belongs to. */
export function rootOf(window: ShellWindowImpl): ShellWindowImpl {
  let root = window;
  while (root.kind === "popup" && root.parent !== null) root = root.parent;
  return root;
}

/** The topmost shown surface of `window` under window point (x, y) that accepts input there, with surface-local coordinates. */
function hitTest(window: ShellWindowImpl, x: number, y: number): { surface: Surface; x: number; y: number } | null {
  const geometry = window.windowGeometry();
  const px = x + geometry.x;
  const py = y + geometry.y;
  const placed = placedSurfaces(window.surface);
  for (let i = placed.length - 1; i >= 0; i--) {
    const { surface, x: sx, y: sy } = placed[i] as (typeof placed)[number];
    const lx = px - sx;
    const ly = py - sy;
    if (lx < 0 || ly < 0 || lx >= surface.width || ly >= surface.height) continue;
    if (surface.inputRegion !== null && !surface.inputRegion.contains(Math.floor(lx), Math.floor(ly))) continue;
    return { surface, x: lx, y: ly };
  }
  return null;
}
