/**
 * What the fuzz client believes about its connection (its objects with
 * their interfaces and versions, the globals announced, the serials it was
 * given), and the generator of its requests: recipes that walk real apps'
 * paths into deep states (a toplevel through its configure handshake to a
 * mapped buffer, popups, subsurfaces, the clipboard, pools that shrink),
 * random requests of any live object by its schema, and mutations of single
 * requests (bad ids and opcodes, lying lengths, strings without NUL, reused
 * new_ids, missing or wrong fds).
 */
import { allInterfaces, type ArgSpec, type InterfaceSpec, type MessageSpec } from "../../../wayland/index.ts";
import { HOSTILE_U32, type Random } from "../harness.ts";
import { decodeEvent, opcodeOf, utf8, type FdSpec, type Part, type RawRequest, type ReceivedEvent } from "./wire.ts";

/** One object the client believes it has. */
export interface ObjectEntry {
  readonly id: number;
  readonly spec: InterfaceSpec;
  readonly version: number;
}

/** An untyped new_id (wl_registry.bind): the interface and version asked for. */
interface BindValue {
  bind: string;
  version: number;
}

/** An fd argument. */
interface FdValue {
  fd: FdSpec;
}

/** A value for one argument of {@link ClientModel.call}; new_ids with an interface are allocated, not given. */
export type CallValue = number | string | Uint8Array | null | BindValue | FdValue;

/** A request built by the model, with where its new_id is (for mutations that reuse ids). */
export interface BuiltRequest extends RawRequest {
  /** Index into `parts` of the new_id word, or -1. */
  newIdPart: number;
}

function specOf(name: string): InterfaceSpec {
  const spec = allInterfaces.get(name);
  if (spec === undefined) throw new TypeError(`no interface ${name}`);
  return spec;
}

const DISPLAY = specOf("wl_display");

/** The client's side of one connection: objects, globals, serials. */
export class ClientModel {
  readonly objects = new Map<number, ObjectEntry>();
  /** Ids of objects the client destroyed (for requests to dead objects). */
  readonly dead: number[] = [];
  /** Globals announced: interface → name and version. */
  readonly globals = new Map<string, { name: number; version: number }>();
  /** The latest xdg_surface.configure serial of each xdg_surface (by id), until acked. */
  readonly configures = new Map<number, number>();
  /** xdg_wm_base.ping serials not answered yet. */
  readonly pings: number[] = [];
  /** The latest serial of an input event (enter, button, key), for grabs, moves and selections. */
  inputSerial = 0;
  /** Activation tokens received. */
  readonly tokens: string[] = [];
  /** The next id the client allocates. */
  nextId = 2;
  /** A wl_display.error received: the object, the interface the client believed it had, code and message. */
  error: { interface: string; code: number; message: string } | null = null;

  constructor() {
    this.objects.set(1, { id: 1, spec: DISPLAY, version: 1 });
  }

  /** Live objects of interface `name`. */
  all(name: string): ObjectEntry[] {
    const found: ObjectEntry[] = [];
    for (const entry of this.objects.values()) if (entry.spec.name === name) found.push(entry);
    return found;
  }

  /** One live object of interface `name`, or undefined. */
  any(random: Random, name: string): ObjectEntry | undefined {
    const found = this.all(name);
    return found.length === 0 ? undefined : random.pick(found);
  }

  /** Registers a new object at `id` (a client id it allocates, or a server id from an event). */
  add(id: number, name: string, version: number): void {
    const spec = specOf(name);
    this.objects.set(id, { id, spec, version: Math.max(1, Math.min(version, spec.version)) });
  }

  forget(id: number): void {
    if (this.objects.delete(id)) this.dead.push(id);
    this.configures.delete(id);
  }

  /**
   * Builds request `name` of object `objectId` (which the model must hold)
   * from `values`, one per argument except typed new_ids (allocated here and
   * registered at the creator's version). A destructor forgets the object.
   */
  call(objectId: number, name: string, values: readonly CallValue[] = []): BuiltRequest & { created: number } {
    const entry = this.objects.get(objectId);
    if (entry === undefined) throw new TypeError(`the model has no object ${objectId} to call ${name} on`);
    const opcode = opcodeOf(entry.spec, name);
    return this.build(entry, opcode, values);
  }

  /** Builds the request of `entry` with opcode `opcode` from `values` (see {@link call}). */
  build(entry: ObjectEntry, opcode: number, values: readonly CallValue[]): BuiltRequest & { created: number } {
    const message = entry.spec.requests[opcode] as MessageSpec;
    const parts: Part[] = [];
    const fds: FdSpec[] = [];
    let created = 0;
    let newIdPart = -1;
    let next = 0;
    for (const arg of message.args) {
      if (arg.type === "new_id" && arg.interface !== undefined) {
        created = this.nextId++;
        this.add(created, arg.interface, entry.version);
        newIdPart = parts.length;
        parts.push({ kind: "word", value: created });
        continue;
      }
      const value = values[next++];
      switch (arg.type) {
        case "new_id": {
          const bind = value as BindValue;
          created = this.nextId++;
          if (allInterfaces.has(bind.bind)) this.add(created, bind.bind, bind.version);
          parts.push({ kind: "string", bytes: utf8(bind.bind) }, { kind: "word", value: bind.version });
          newIdPart = parts.length;
          parts.push({ kind: "word", value: created });
          break;
        }
        case "string":
          if (value === null) parts.push({ kind: "word", value: 0 });
          else parts.push({ kind: "string", bytes: typeof value === "string" ? utf8(value) : (value as Uint8Array) });
          break;
        case "array":
          parts.push({ kind: "array", bytes: value as Uint8Array });
          break;
        case "fd":
          fds.push((value as FdValue).fd);
          break;
        case "fixed":
          parts.push({ kind: "word", value: Math.round((value as number) * 256) | 0 });
          break;
        default:
          parts.push({ kind: "word", value: (value as number | null) ?? 0 });
      }
    }
    if (message.destructor === true) this.forget(entry.id);
    return { objectId: entry.id, opcode, parts, fds, newIdPart, created };
  }

  /** Takes what the client learns from events: globals, deleted ids, serials, server-made objects, the error. */
  absorb(events: readonly ReceivedEvent[]): void {
    for (const event of events) {
      const entry = this.objects.get(event.objectId);
      if (entry === undefined) continue;
      const message = entry.spec.events[event.opcode];
      if (message === undefined) continue;
      const values = decodeEvent(message.args, event.body);
      if (values === null) continue;
      const key = `${entry.spec.name}.${message.name}`;
      switch (key) {
        case "wl_display.error": {
          const target = this.objects.get(values[0] as number);
          this.error = {
            interface: target?.spec.name ?? "unknown",
            code: values[1] as number,
            message: String(values[2]),
          };
          break;
        }
        case "wl_display.delete_id":
          this.forget(values[0] as number);
          break;
        case "wl_registry.global":
          this.globals.set(values[1] as string, { name: values[0] as number, version: values[2] as number });
          break;
        case "xdg_surface.configure":
          this.configures.set(entry.id, values[0] as number);
          break;
        case "xdg_wm_base.ping":
          this.pings.push(values[0] as number);
          break;
        case "wl_keyboard.enter":
        case "wl_keyboard.key":
        case "wl_pointer.enter":
        case "wl_pointer.button":
          this.inputSerial = values[0] as number;
          break;
        case "wl_data_device.data_offer":
          this.add(values[0] as number, "wl_data_offer", entry.version);
          break;
        case "xdg_activation_token_v1.done":
          this.tokens.push(values[0] as string);
          break;
      }
    }
  }
}

// ---- values ----

const WORDS = ["", "a", "fuzz", "Terminal", "org.example.App", "ünï©ødé ☃", "<b>&amp;</b>", "%s%n", "\u202e\u0000x"];
const MIME_TYPES = ["text/plain;charset=utf-8", "text/plain", "UTF8_STRING", "STRING", "TEXT", "image/png", "x/y"];

/** A string argument's bytes: words, MIME types, random bytes (invalid UTF-8 too), or a long one. */
function randomString(random: Random): string | Uint8Array {
  switch (random.below(10)) {
    case 0:
      return random.bytes(random.below(48));
    case 1:
      return "x".repeat(200 + random.below(3000));
    case 2:
    case 3:
      return random.pick(MIME_TYPES);
    default:
      return random.pick(WORDS);
  }
}

function enumValues(owner: InterfaceSpec, name: string): number[] {
  const dot = name.indexOf(".");
  const spec = dot < 0 ? owner : allInterfaces.get(name.slice(0, dot));
  const entries = spec?.enums[dot < 0 ? name : name.slice(dot + 1)];
  return entries === undefined ? [] : Object.values(entries);
}

/** An int or uint: small, enum values, serials the client was given, or a value on an edge. */
function randomNumber(random: Random, model: ClientModel, owner: InterfaceSpec, arg: ArgSpec): number {
  if (arg.enum !== undefined && random.below(5) !== 0) {
    const values = enumValues(owner, arg.enum);
    if (values.length > 0) return random.pick(values);
  }
  switch (random.below(8)) {
    case 0:
      return random.pick(HOSTILE_U32);
    case 1:
      return -1 - random.below(64);
    case 2:
      return random.below(4000);
    case 3:
      return model.inputSerial + random.below(3);
    case 4:
      return random.u32();
    default:
      return random.below(64);
  }
}

/** An object argument: a live object of the right interface mostly, else null, a dead id, or any id. */
function randomObject(random: Random, model: ClientModel, arg: ArgSpec): number | null {
  if (arg.interface !== undefined && random.below(8) !== 0) {
    const entry = model.any(random, arg.interface);
    if (entry !== undefined) return entry.id;
  }
  if (arg.nullable === true && random.oneIn(2)) return null;
  switch (random.below(4)) {
    case 0:
      return model.dead.length > 0 ? random.pick(model.dead) : 0;
    case 1:
      return random.pick([...model.objects.keys()]);
    case 2:
      return random.pick([0, 0xff000000, 0xffffffff, model.nextId]);
    default:
      return 1 + random.below(model.nextId + 2);
  }
}

/** An fd of a random kind: mostly a memfd of a page. */
export function randomFd(random: Random): FdSpec {
  switch (random.below(10)) {
    case 0:
      return { kind: "pipe-read" };
    case 1:
      return { kind: "pipe-write" };
    case 2:
      return { kind: "socket" };
    case 3:
      return { kind: "eventfd" };
    case 4:
      return { kind: "dev-null" };
    case 5:
      return { kind: "memfd", size: 0 };
    default:
      return { kind: "memfd", size: 4096 * (1 + random.below(4)) };
  }
}

function randomValue(random: Random, model: ClientModel, owner: InterfaceSpec, arg: ArgSpec): CallValue {
  switch (arg.type) {
    case "int":
    case "uint":
      return randomNumber(random, model, owner, arg);
    case "fixed":
      return random.oneIn(6) ? (random.u32() | 0) / 256 : random.below(4000) / 4 - 100;
    case "string":
      return arg.nullable === true && random.oneIn(8) ? null : randomString(random);
    case "object":
      return randomObject(random, model, arg);
    case "array":
      return random.oneIn(10) ? random.bytes(1000 + random.below(3000)) : random.bytes(random.below(32));
    case "fd":
      return { fd: randomFd(random) };
    case "new_id": {
      const names = [...model.globals.keys()];
      const name = names.length > 0 && !random.oneIn(10) ? random.pick(names) : "wl_nonexistent";
      return { bind: name, version: 1 + random.below(8) };
    }
  }
}

// ---- the generator ----

/**
 * How a client behaves: real apps' paths with valid values only (its one
 * hostile act: shrinking a pool's file), real apps' paths with now and then
 * a bad value, a mix with random requests, or mostly random requests.
 */
export type Style = "clean" | "app" | "mixed" | "chaos";

/** Builds a client's requests from its model: recipes toward deep states, random requests, mutations. */
export class RequestGenerator {
  readonly model: ClientModel;
  private readonly random: Random;
  private readonly style: Style;
  /** Title given to toplevels (the liveness probe sets its own). */
  title: string | null = null;
  /** Requests for the start of the next round (showing a buffer whose file shrinks in between). */
  private deferred: BuiltRequest[] = [];

  constructor(random: Random, model: ClientModel, style: Style) {
    this.random = random;
    this.model = model;
    this.style = style;
  }

  /** True one time in `n`, never for a clean client: where a recipe picks a bad value. */
  private bad(n: number): boolean {
    return this.style !== "clean" && this.random.oneIn(n);
  }

  /** About `count` requests for one round (recipes may give a few more). */
  round(count: number): BuiltRequest[] {
    const out: BuiltRequest[] = this.deferred.filter((request) => this.model.objects.has(request.objectId));
    this.deferred = [];
    const randomShare = this.style === "clean" ? 0 : this.style === "app" ? 4 : this.style === "mixed" ? 35 : 80;
    while (out.length < count) {
      if (this.random.below(100) < randomShare) out.push(this.randomRequest());
      else out.push(...this.recipe());
    }
    return out;
  }

  /**
   * A random request to a random live object that has requests (now and
   * then one newer than its version, a bad opcode, or any object at all).
   * A wl_registry.bind names an announced global, mostly rightly.
   */
  randomRequest(): BuiltRequest {
    const random = this.random;
    const entries = [...this.model.objects.values()];
    const withRequests = entries.filter((entry) => entry.spec.requests.length > 0 && entry.id !== 1);
    const entry = random.oneIn(40) || withRequests.length === 0 ? random.pick(entries) : random.pick(withRequests);
    let requests = entry.spec.requests.map((_, opcode) => opcode);
    if (!random.oneIn(20)) requests = requests.filter((opcode) => entry.spec.requests[opcode]!.since <= entry.version);
    if (requests.length === 0)
      return { objectId: entry.id, opcode: random.below(8), parts: [], fds: [], newIdPart: -1 };
    if (entry.spec.name === "wl_registry" && !random.oneIn(10)) {
      const out: BuiltRequest[] = [];
      this.bindAny(out);
      // No global announced yet: what a real client does then, a roundtrip.
      return out.length > 0 ? (out[0] as BuiltRequest) : this.model.call(1, "sync");
    }
    const opcode = random.pick(requests);
    const message = entry.spec.requests[opcode] as MessageSpec;
    const values = message.args
      .filter((arg) => !(arg.type === "new_id" && arg.interface !== undefined))
      .map((arg) => randomValue(random, this.model, entry.spec, arg));
    return this.model.build(entry, opcode, values);
  }

  /** Binds `name` (when announced) at a random valid version, unless bound already; undefined when it was not announced. */
  bind(out: BuiltRequest[], name: string): ObjectEntry | undefined {
    const existing = this.model.any(this.random, name);
    if (existing !== undefined && !this.random.oneIn(8)) return existing;
    const global = this.model.globals.get(name);
    const registry = this.model.any(this.random, "wl_registry");
    if (global === undefined || registry === undefined) return existing;
    const version = 1 + this.random.below(global.version);
    const request = this.model.call(registry.id, "bind", [global.name, { bind: name, version }]);
    out.push(request);
    return this.model.objects.get(request.created);
  }

  /** One step of a real app's path, chosen by what the client has. */
  recipe(): BuiltRequest[] {
    const out: BuiltRequest[] = [];
    const model = this.model;
    const random = this.random;
    if (model.any(random, "wl_registry") === undefined) {
      out.push(model.call(1, "get_registry"));
      return out;
    }
    if (model.globals.size === 0) {
      out.push(model.call(1, "sync"));
      return out;
    }
    const pending = [...model.configures.keys()];
    if (pending.length > 0 && random.below(3) !== 0) {
      this.ack(out, random.pick(pending));
      return out;
    }
    switch (random.below(20)) {
      case 0:
        this.bindAny(out);
        break;
      case 1:
      case 2:
      case 3:
        this.window(out);
        break;
      case 4:
      case 5:
        this.buffer(out, model.any(random, "wl_surface"));
        break;
      case 6:
        this.subsurface(out);
        break;
      case 7:
        this.popup(out);
        break;
      case 8:
        this.seat(out);
        break;
      case 9:
        this.clipboard(out);
        break;
      case 10:
        this.viewport(out);
        break;
      case 11:
        this.destroyOne(out);
        break;
      case 12:
        this.toplevelRequest(out);
        break;
      case 13:
        this.activation(out);
        break;
      case 14:
        this.region(out);
        break;
      case 15:
        this.output(out);
        break;
      case 16:
        this.frame(out);
        break;
      case 17:
        this.positionerRequest(out);
        break;
      default: {
        const ping = model.pings.shift();
        const wmBase = model.any(random, "xdg_wm_base");
        if (ping !== undefined && wmBase !== undefined) out.push(model.call(wmBase.id, "pong", [ping]));
        else this.window(out);
      }
    }
    return out;
  }

  private bindAny(out: BuiltRequest[]): void {
    const names = [...this.model.globals.keys()];
    const registry = this.model.any(this.random, "wl_registry");
    if (registry === undefined || names.length === 0) return;
    const name = this.random.pick(names);
    const global = this.model.globals.get(name)!;
    // Now and then a version past the global's, 0, or a name that is another global's.
    const version = this.bad(12)
      ? this.random.pick([0, global.version + 1, 0xffffffff])
      : 1 + this.random.below(global.version);
    const globalName = this.bad(20) ? global.name + 1 + this.random.below(3) : global.name;
    out.push(this.model.call(registry.id, "bind", [globalName, { bind: name, version }]));
  }

  /** A surface with the xdg_toplevel role, titled, committed without a buffer (the configure handshake starts). */
  window(out: BuiltRequest[]): void {
    const model = this.model;
    const compositor = this.bind(out, "wl_compositor");
    const wmBase = this.bind(out, "xdg_wm_base");
    if (compositor === undefined || wmBase === undefined) return;
    const surface = model.call(compositor.id, "create_surface");
    out.push(surface);
    const xdgSurface = model.call(wmBase.id, "get_xdg_surface", [surface.created]);
    out.push(xdgSurface);
    const toplevel = model.call(xdgSurface.created, "get_toplevel");
    out.push(toplevel);
    out.push(model.call(toplevel.created, "set_title", [this.title ?? randomString(this.random)]));
    if (this.random.oneIn(2)) out.push(model.call(toplevel.created, "set_app_id", [randomString(this.random)]));
    if (this.random.oneIn(4)) {
      const decorations = this.bind(out, "zxdg_decoration_manager_v1");
      if (decorations !== undefined) {
        const decoration = model.call(decorations.id, "get_toplevel_decoration", [toplevel.created]);
        out.push(decoration, model.call(decoration.created, "set_mode", [1 + this.random.below(2)]));
      }
    }
    if (this.random.oneIn(4)) out.push(model.call(xdgSurface.created, "set_window_geometry", [0, 0, 32, 32]));
    out.push(model.call(surface.created, "commit"));
  }

  /** Acks an xdg_surface's configure (now and then with a wrong serial), then gives its surface a buffer. */
  ack(out: BuiltRequest[], xdgSurfaceId: number): void {
    const model = this.model;
    const serial = model.configures.get(xdgSurfaceId) ?? 0;
    model.configures.delete(xdgSurfaceId);
    if (!model.objects.has(xdgSurfaceId)) return;
    out.push(model.call(xdgSurfaceId, "ack_configure", [this.bad(12) ? serial + 1 : serial]));
    // The wl_surface made just before an xdg_surface has the id before it (as the recipes make them).
    const surface = model.objects.get(xdgSurfaceId - 1);
    this.buffer(out, surface?.spec.name === "wl_surface" ? surface : model.any(this.random, "wl_surface"), 2);
  }

  /**
   * A pool over a fresh memfd and a buffer in it, attached, damaged and
   * committed on `surface`: mostly valid, now and then a bad size, stride,
   * offset or format, a file shorter than the pool, or a file that shrinks
   * after the pool is made.
   */
  buffer(out: BuiltRequest[], surface: ObjectEntry | undefined, shrinkOneIn = 8): void {
    const model = this.model;
    const random = this.random;
    const shm = this.bind(out, "wl_shm");
    if (shm === undefined) return;
    const width = this.bad(20) ? random.pick(HOSTILE_U32) | 0 : 1 + random.below(96);
    const height = this.bad(20) ? random.pick(HOSTILE_U32) | 0 : 1 + random.below(96);
    const stride = this.bad(20)
      ? random.pick(HOSTILE_U32) | 0
      : width * 4 + (random.oneIn(6) ? 4 * random.below(4) : 0);
    const offset = this.bad(20) ? random.pick(HOSTILE_U32) | 0 : random.oneIn(4) ? 4 * random.below(64) : 0;
    const needed = Math.max(0, Math.min(stride * height + offset, 64 << 20));
    let size = this.bad(20) ? random.pick(HOSTILE_U32) | 0 : needed === 0 ? 4096 : needed;
    if (this.bad(25)) size = Math.max(0, size - 4);
    const fd: FdSpec = {
      kind: "memfd",
      size: this.bad(20) ? Math.max(0, Math.min(needed, 1 << 26) >> 1) : Math.max(0, Math.min(size, 1 << 26)),
    };
    if (random.oneIn(shrinkOneIn)) fd.shrinkTo = random.oneIn(2) ? 0 : random.below(Math.max(1, fd.size));
    const pool = model.call(shm.id, "create_pool", [{ fd }, size]);
    out.push(pool);
    const format = this.bad(15) ? random.u32() : random.below(2);
    const buffer = model.call(pool.created, "create_buffer", [offset, width, height, stride, format]);
    out.push(buffer);
    if (random.oneIn(3)) out.push(model.call(pool.created, "destroy"));
    if (surface === undefined || !model.objects.has(surface.id)) return;
    // A file that is to shrink: the surface shows the buffer a round later, once the server has mapped the pool.
    const show = fd.shrinkTo !== undefined ? this.deferred : out;
    show.push(model.call(surface.id, "attach", [buffer.created, 0, 0]));
    if (surface.version >= 4 && random.oneIn(2)) {
      show.push(model.call(surface.id, "damage_buffer", [0, 0, width, height]));
    } else {
      show.push(model.call(surface.id, "damage", [0, 0, this.bad(10) ? 0x7fffffff : width, height]));
    }
    if (random.oneIn(3)) show.push(model.call(surface.id, "frame"));
    show.push(model.call(surface.id, "commit"));
    if (random.oneIn(5) && model.objects.has(pool.created)) {
      out.push(model.call(pool.created, "resize", [size + 4096 * random.below(4)]));
    }
  }

  private frame(out: BuiltRequest[]): void {
    const surface = this.model.any(this.random, "wl_surface");
    if (surface === undefined) return;
    out.push(this.model.call(surface.id, "frame"), this.model.call(surface.id, "commit"));
  }

  private subsurface(out: BuiltRequest[]): void {
    const model = this.model;
    const random = this.random;
    const compositor = this.bind(out, "wl_compositor");
    const subcompositor = this.bind(out, "wl_subcompositor");
    const parent = model.any(random, "wl_surface");
    if (compositor === undefined || subcompositor === undefined || parent === undefined) return;
    // Now and then the parent itself as the child: a surface cannot be its own subsurface.
    let surfaceId = parent.id;
    if (!random.oneIn(8)) {
      const made = model.call(compositor.id, "create_surface");
      out.push(made);
      surfaceId = made.created;
    }
    const sub = model.call(subcompositor.id, "get_subsurface", [surfaceId, this.bad(10) ? surfaceId : parent.id]);
    out.push(sub);
    out.push(model.call(sub.created, "set_position", [random.below(64) - 8, random.below(64) - 8]));
    if (random.oneIn(3))
      out.push(model.call(sub.created, random.oneIn(2) ? "place_above" : "place_below", [parent.id]));
    if (random.oneIn(3)) out.push(model.call(sub.created, random.oneIn(2) ? "set_sync" : "set_desync"));
    const surface = model.objects.get(surfaceId);
    this.buffer(out, surface);
    if (model.objects.has(parent.id)) out.push(model.call(parent.id, "commit"));
  }

  private positioner(out: BuiltRequest[], wmBase: ObjectEntry): number {
    const model = this.model;
    const random = this.random;
    const positioner = model.call(wmBase.id, "create_positioner");
    out.push(positioner);
    const bad = this.bad(10);
    out.push(
      model.call(positioner.created, "set_size", bad ? [0, -1] : [1 + random.below(200), 1 + random.below(200)]),
    );
    out.push(
      model.call(positioner.created, "set_anchor_rect", [
        random.below(64),
        random.below(64),
        bad ? -5 : 1 + random.below(64),
        1 + random.below(32),
      ]),
    );
    out.push(model.call(positioner.created, "set_anchor", [random.below(bad ? 20 : 9)]));
    out.push(model.call(positioner.created, "set_gravity", [random.below(bad ? 20 : 9)]));
    if (random.oneIn(2)) out.push(model.call(positioner.created, "set_constraint_adjustment", [random.below(64)]));
    if (random.oneIn(3))
      out.push(model.call(positioner.created, "set_offset", [random.below(40) - 20, random.below(40) - 20]));
    return positioner.created;
  }

  private popup(out: BuiltRequest[]): void {
    const model = this.model;
    const random = this.random;
    const compositor = this.bind(out, "wl_compositor");
    const wmBase = this.bind(out, "xdg_wm_base");
    if (compositor === undefined || wmBase === undefined) return;
    const positioner = this.positioner(out, wmBase);
    const surface = model.call(compositor.id, "create_surface");
    out.push(surface);
    const xdgSurface = model.call(wmBase.id, "get_xdg_surface", [surface.created]);
    out.push(xdgSurface);
    const parents = model.all("xdg_surface").filter((entry) => entry.id !== xdgSurface.created);
    const parent = parents.length > 0 && !this.bad(8) ? random.pick(parents).id : null;
    const popup = model.call(xdgSurface.created, "get_popup", [parent, positioner]);
    out.push(popup);
    const seat = model.any(random, "wl_seat");
    if (seat !== undefined && random.oneIn(3))
      out.push(model.call(popup.created, "grab", [seat.id, model.inputSerial]));
    if (random.oneIn(4) && popup.created !== 0 && model.objects.get(popup.created)!.version >= 3) {
      out.push(model.call(popup.created, "reposition", [this.positioner(out, wmBase), random.below(100)]));
    }
    out.push(model.call(surface.created, "commit"));
  }

  private positionerRequest(out: BuiltRequest[]): void {
    const wmBase = this.bind(out, "xdg_wm_base");
    if (wmBase !== undefined) this.positioner(out, wmBase);
  }

  private seat(out: BuiltRequest[]): void {
    const model = this.model;
    const random = this.random;
    const seat = this.bind(out, "wl_seat");
    if (seat === undefined) return;
    const pointer = model.call(seat.id, "get_pointer");
    out.push(pointer, model.call(seat.id, "get_keyboard"));
    if (random.oneIn(4)) out.push(model.call(seat.id, "get_touch"));
    const surface = model.any(random, "wl_surface");
    out.push(
      model.call(pointer.created, "set_cursor", [
        model.inputSerial,
        surface?.id ?? null,
        random.below(16),
        random.below(16),
      ]),
    );
  }

  private clipboard(out: BuiltRequest[]): void {
    const model = this.model;
    const random = this.random;
    const manager = this.bind(out, "wl_data_device_manager");
    const seat = this.bind(out, "wl_seat");
    if (manager === undefined || seat === undefined) return;
    let device = model.any(random, "wl_data_device");
    if (device === undefined || random.oneIn(6)) {
      const made = model.call(manager.id, "get_data_device", [seat.id]);
      out.push(made);
      device = model.objects.get(made.created);
    }
    const offer = model.any(random, "wl_data_offer");
    if (offer !== undefined && random.oneIn(2)) {
      out.push(model.call(offer.id, "accept", [model.inputSerial, random.pick(MIME_TYPES)]));
      out.push(
        model.call(offer.id, "receive", [
          random.pick(MIME_TYPES),
          { fd: this.bad(5) ? randomFd(random) : { kind: "pipe-write" } },
        ]),
      );
      if (random.oneIn(3)) out.push(model.call(offer.id, "destroy"));
      return;
    }
    const source = model.call(manager.id, "create_data_source");
    out.push(source);
    for (let i = random.below(4); i >= 0; i--) out.push(model.call(source.created, "offer", [random.pick(MIME_TYPES)]));
    if (device !== undefined) out.push(model.call(device.id, "set_selection", [source.created, model.inputSerial]));
  }

  private viewport(out: BuiltRequest[]): void {
    const model = this.model;
    const random = this.random;
    const viewporter = this.bind(out, "wp_viewporter");
    const surface = model.any(random, "wl_surface");
    if (viewporter === undefined || surface === undefined) return;
    const viewport = model.call(viewporter.id, "get_viewport", [surface.id]);
    out.push(viewport);
    const bad = this.bad(8);
    out.push(
      model.call(
        viewport.created,
        "set_source",
        bad ? [-1, 0, 0.5, 1e6] : [0, 0, 1 + random.below(32), 1 + random.below(32)],
      ),
    );
    out.push(
      model.call(viewport.created, "set_destination", bad ? [0, -1] : [1 + random.below(300), 1 + random.below(300)]),
    );
    out.push(model.call(surface.id, "commit"));
  }

  /** Destroys one object by its destructor, in any order (a parent before its children too). */
  private destroyOne(out: BuiltRequest[]): void {
    const candidates = [...this.model.objects.values()].filter((entry) =>
      entry.spec.requests.some((request) => request.destructor === true && request.since <= entry.version),
    );
    if (candidates.length === 0) return;
    const entry = this.random.pick(candidates);
    const opcode = entry.spec.requests.findIndex(
      (request) => request.destructor === true && request.since <= entry.version,
    );
    out.push(this.model.build(entry, opcode, []));
  }

  private toplevelRequest(out: BuiltRequest[]): void {
    const model = this.model;
    const random = this.random;
    const toplevel = model.any(random, "xdg_toplevel");
    if (toplevel === undefined) return;
    const seat = model.any(random, "wl_seat");
    const seatId = seat?.id ?? 0;
    switch (random.below(8)) {
      case 0:
        out.push(
          model.call(toplevel.id, "set_parent", [
            random.oneIn(2) ? null : (model.any(random, "xdg_toplevel")?.id ?? null),
          ]),
        );
        break;
      case 1:
        out.push(model.call(toplevel.id, random.oneIn(2) ? "set_maximized" : "unset_maximized"));
        break;
      case 2:
        out.push(model.call(toplevel.id, "set_fullscreen", [model.any(random, "wl_output")?.id ?? null]));
        break;
      case 3:
        if (seatId !== 0) out.push(model.call(toplevel.id, "move", [seatId, model.inputSerial]));
        break;
      case 4:
        if (seatId !== 0) out.push(model.call(toplevel.id, "resize", [seatId, model.inputSerial, random.below(16)]));
        break;
      case 5:
        out.push(
          model.call(toplevel.id, random.oneIn(2) ? "set_min_size" : "set_max_size", [
            random.below(500) - 5,
            random.below(500) - 5,
          ]),
        );
        break;
      case 6:
        if (seatId !== 0) out.push(model.call(toplevel.id, "show_window_menu", [seatId, model.inputSerial, 5, 5]));
        break;
      default:
        out.push(model.call(toplevel.id, "set_minimized"));
    }
  }

  private activation(out: BuiltRequest[]): void {
    const model = this.model;
    const random = this.random;
    const activation = this.bind(out, "xdg_activation_v1");
    if (activation === undefined) return;
    const surface = model.any(random, "wl_surface");
    const token = model.tokens.shift();
    if (token !== undefined && surface !== undefined) {
      out.push(model.call(activation.id, "activate", [token, surface.id]));
      return;
    }
    const request = model.call(activation.id, "get_activation_token");
    out.push(request);
    if (surface !== undefined) out.push(model.call(request.created, "set_surface", [surface.id]));
    if (random.oneIn(2)) out.push(model.call(request.created, "set_app_id", [randomString(random)]));
    out.push(model.call(request.created, "commit"));
  }

  private region(out: BuiltRequest[]): void {
    const model = this.model;
    const random = this.random;
    const compositor = this.bind(out, "wl_compositor");
    if (compositor === undefined) return;
    const region = model.call(compositor.id, "create_region");
    out.push(region);
    for (let i = random.below(4); i >= 0; i--) {
      out.push(
        model.call(region.created, random.oneIn(3) ? "subtract" : "add", [
          random.below(100) - 10,
          random.below(100) - 10,
          this.bad(10) ? 0x7fffffff : random.below(200),
          random.below(200),
        ]),
      );
    }
    const surface = model.any(random, "wl_surface");
    if (surface !== undefined) {
      out.push(model.call(surface.id, random.oneIn(2) ? "set_opaque_region" : "set_input_region", [region.created]));
    }
    if (random.oneIn(2)) out.push(model.call(region.created, "destroy"));
  }

  private output(out: BuiltRequest[]): void {
    const model = this.model;
    const output = this.bind(out, "wl_output");
    const manager = this.bind(out, "zxdg_output_manager_v1");
    if (output === undefined || manager === undefined) return;
    out.push(model.call(manager.id, "get_xdg_output", [output.id]));
  }
}

// ---- mutations of one request ----

/**
 * One request made hostile: an unknown, dead or server object; an opcode
 * past the interface's; a header size that lies; a string without its NUL
 * or with a length past the message; an array length past it; a new_id
 * that is in use, the server's, or 0; a word on an edge; args missing or
 * extra; an fd missing, extra, or of another kind.
 */
export function mutateRequest(random: Random, model: ClientModel, request: BuiltRequest): BuiltRequest {
  const parts = request.parts.map((part) => ({ ...part }));
  const mutated: BuiltRequest = { ...request, parts, fds: [...request.fds] };
  switch (random.below(12)) {
    case 0:
      mutated.objectId = random.pick([
        0,
        model.nextId + random.below(4),
        0xff000000,
        0xffffffff,
        ...model.dead.slice(-4),
      ]);
      break;
    case 1:
      mutated.opcode = random.oneIn(2)
        ? 0xffff
        : (allInterfaces.get("wl_surface")?.requests.length ?? 12) + random.below(4);
      break;
    case 2: {
      let size = 8;
      for (const part of parts)
        size +=
          part.kind === "word"
            ? 4
            : 4 + (((part.kind === "string" ? part.bytes.length + 1 : part.bytes.length) + 3) & ~3);
      mutated.size = random.pick([0, 4, 6, 7, size - 4, size + 4, size + 2, 4100, 0xfffc]);
      break;
    }
    case 3: {
      const strings = parts.filter((part) => part.kind === "string");
      if (strings.length === 0) return mutateRequest(random, model, request);
      const part = random.pick(strings) as Extract<Part, { kind: "string" }>;
      if (random.oneIn(2)) part.nul = false;
      else part.length = random.pick([0, 1, 0xffffffff, 0x80000000, part.bytes.length + 5, 4096]);
      break;
    }
    case 4: {
      const arrays = parts.filter((part) => part.kind === "array");
      if (arrays.length === 0) {
        parts.push({ kind: "array", bytes: random.bytes(random.below(16)), length: random.pick(HOSTILE_U32) });
        break;
      }
      (random.pick(arrays) as Extract<Part, { kind: "array" }>).length = random.pick(HOSTILE_U32);
      break;
    }
    case 5: {
      if (request.newIdPart < 0) return mutateRequest(random, model, request);
      const live = [...model.objects.keys()];
      (parts[request.newIdPart] as Extract<Part, { kind: "word" }>).value = random.pick([
        0,
        0xff000000,
        0xfffffffe,
        random.pick(live),
        random.pick(live),
      ]);
      break;
    }
    case 6: {
      const words = parts.filter((part) => part.kind === "word");
      if (words.length === 0) return mutateRequest(random, model, request);
      (random.pick(words) as Extract<Part, { kind: "word" }>).value = random.pick(HOSTILE_U32);
      break;
    }
    case 7:
      parts.splice(random.below(parts.length + 1));
      break;
    case 8:
      for (let i = 1 + random.below(3); i > 0; i--) parts.push({ kind: "word", value: random.u32() });
      break;
    case 9:
      if (mutated.fds.length > 0) mutated.fds.pop();
      else mutated.fds.push(randomFd(random));
      break;
    case 10:
      if (mutated.fds.length > 0) mutated.fds[random.below(mutated.fds.length)] = randomFd(random);
      else parts.unshift({ kind: "string", bytes: random.bytes(random.below(12)) });
      break;
    default: {
      // Another request's arguments under this header: every argument of the wrong type.
      const other = random.pick([...model.objects.values()]);
      const message = other.spec.requests[random.below(other.spec.requests.length)];
      if (message === undefined) return mutated;
      mutated.parts = message.args.map((arg) =>
        arg.type === "string"
          ? { kind: "string", bytes: random.bytes(random.below(10)) }
          : arg.type === "array"
            ? { kind: "array", bytes: random.bytes(random.below(10)) }
            : { kind: "word", value: random.u32() },
      );
    }
  }
  return mutated;
}
