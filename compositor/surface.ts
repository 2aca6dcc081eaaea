/**
 * wl_compositor, wl_region, wl_surface, wl_subcompositor and wp_viewporter:
 * surfaces with double-buffered state, regions, subsurface trees (sync and
 * desync) and viewport crops. A surface tree's root (the surface with the
 * xdg role) is told after every commit that changed the tree, so the shell
 * can turn the whole tree into one window image.
 */
import {
  shmBufferOf,
  SHM_FORMAT_ARGB8888,
  wl_subcompositor,
  wl_subsurface,
  wl_surface,
  wp_viewport,
  wp_viewporter,
  type Client,
  type Display,
  type Resource,
  type ShmBuffer,
} from "../wayland/index.ts";
import { copyRect, type StridedBytes } from "../native/index.ts";
import type { Rect } from "./geometry.ts";
import { intersect, isEmpty, union } from "./geometry.ts";
import { MAX_OUTPUT_SIZE } from "./output.ts";
import type { PixelSource } from "./api.ts";

/** A region built by add and subtract operations, in surface coordinates; the last operation covering a point decides. */
export class Region {
  private readonly operations: Array<{ add: boolean; rect: Rect }> = [];

  /** Adds or subtracts a rectangle. */
  apply(add: boolean, rect: Rect): void {
    if (isEmpty(rect)) return;
    this.operations.push({ add, rect });
  }

  /** True when (x, y) is inside. */
  contains(x: number, y: number): boolean {
    for (let i = this.operations.length - 1; i >= 0; i--) {
      const { add, rect } = this.operations[i] as { add: boolean; rect: Rect };
      if (x >= rect.x && y >= rect.y && x < rect.x + rect.width && y < rect.y + rect.height) return add;
    }
    return false;
  }

  /** Number of operations (what hit-testing costs). */
  get size(): number {
    return this.operations.length;
  }

  /** A copy (what set_input_region takes: later changes to the wl_region do not count). */
  clone(): Region {
    const copy = new Region();
    copy.operations.push(...this.operations);
    return copy;
  }
}

/** Rectangles a region may be built of: beyond, the client gets no_memory (each pointer event tests them all). */
const MAX_REGION_OPERATIONS = 4096;

/** Damage rectangles kept per commit; more are merged into their bounding box (damage may be over-counted, never lost). */
const MAX_DAMAGE_RECTS = 64;

/** How deep subsurfaces may nest. */
const MAX_SUBSURFACE_DEPTH = 32;

/** Adds a damage rectangle, merging everything into one bounding box past {@link MAX_DAMAGE_RECTS}. */
function addDamage(list: Rect[], rect: Rect): void {
  if (list.length < MAX_DAMAGE_RECTS) {
    list.push(rect);
    return;
  }
  let merged = rect;
  for (const other of list) merged = union(merged, other);
  list.length = 0;
  list.push(merged);
}

/** Both lists of damage in one, bounded like {@link addDamage}. */
function mergeDamage(older: Rect[], newer: readonly Rect[]): Rect[] {
  const out = [...older];
  for (const rect of newer) addDamage(out, rect);
  return out;
}

/** The viewport of a surface: a source crop in buffer coordinates and a destination size (null = unset). */
interface Viewport {
  source: { x: number; y: number; width: number; height: number } | null;
  destination: { width: number; height: number } | null;
}

/** What a wl_surface.commit applies (or a sync subsurface caches). */
interface SurfaceState {
  /** attach was called: `buffer` is the new buffer (null = remove content). */
  attached: boolean;
  buffer: Resource<"wl_buffer"> | null;
  /** Damage in surface coordinates and in buffer coordinates. */
  surfaceDamage: Rect[];
  bufferDamage: Rect[];
  frames: Array<Resource<"wl_callback">>;
  scale: number | undefined;
  /** undefined: unchanged; null: infinite. */
  inputRegion: Region | null | undefined;
  viewport: Viewport | undefined;
}

function emptyState(): SurfaceState {
  return {
    attached: false,
    buffer: null,
    surfaceDamage: [],
    bufferDamage: [],
    frames: [],
    scale: undefined,
    inputRegion: undefined,
    viewport: undefined,
  };
}

/** What the root of a surface tree does with it (the xdg shell implements it). */
export interface SurfaceRoleHandler {
  /** Something in the tree was committed and applied (`from` is the surface that committed). */
  treeCommitted(from: Surface): void;
  /** The tree's frame callbacks may go on the refresh clock now (false while they wait for the consumer, or for the window to be shown). */
  readonly framesMayFire: boolean;
  /** A consumer holds the tree's buffers (they are not released after the commit). */
  readonly buffersHeld: boolean;
}

/** The place of a subsurface in its parent (position and sync mode). */
export class Subsurface {
  readonly resource: Resource<"wl_subsurface">;
  readonly surface: Surface;
  readonly parent: Surface;
  /** Position in the parent's surface coordinates (applied with the parent's commit). */
  x = 0;
  y = 0;
  pendingX = 0;
  pendingY = 0;
  positionPending = false;
  synchronized = true;

  constructor(resource: Resource<"wl_subsurface">, surface: Surface, parent: Surface) {
    this.resource = resource;
    this.surface = surface;
    this.parent = parent;
  }
}

/**
 * One wl_surface: pending, cached and current state, its role, its
 * subsurfaces in stacking order, and the frame callbacks waiting for a
 * frame to be done.
 */
export class Surface {
  readonly resource: Resource<"wl_surface">;
  readonly client: Client;
  /** The role it was given for life ("xdg_toplevel", "xdg_popup", "subsurface", "cursor"), or null. */
  role: string | null = null;
  /** Who handles commits when this surface is a tree root with a role (set while the role object lives). */
  roleHandler: SurfaceRoleHandler | null = null;
  /** The wl_subsurface when this is a subsurface (while that object lives). */
  subsurface: Subsurface | null = null;
  /** Children and this surface itself, bottom first (current and pending stacking order). */
  order: Array<Surface> = [this];
  pendingOrder: Array<Surface> = [this];
  /** The current buffer (null after a null attach, or when the client destroyed it). */
  buffer: Resource<"wl_buffer"> | null = null;
  /** True while the current content came from a non-null attach (destroying the buffer does not unmap). */
  hasContent = false;
  /** The current buffer was not released yet. */
  bufferHeld = false;
  /** Surface-local size (logical pixels) of the current content; 0×0 without content. */
  width = 0;
  height = 0;
  scale = 1;
  inputRegion: Region | null = null;
  viewport: Viewport = { source: null, destination: null };
  viewportResource: Resource<"wp_viewport"> | null = null;
  /** Where a scaled surface's resampled pixels go (reused while the size stays). */
  private readonly scratch: ResampleScratch = resampleScratch();
  /** Damage applied since the shell last took it, in surface coordinates. */
  damage: Rect[] = [];
  /** Frame callbacks of applied commits, waiting for a frame to be done. */
  frameCallbacks: Array<Resource<"wl_callback">> = [];
  destroyed = false;

  private pending: SurfaceState = emptyState();
  private cached: SurfaceState | null = null;
  private readonly hooks: SurfaceHooks;

  constructor(resource: Resource<"wl_surface">, hooks: SurfaceHooks) {
    this.resource = resource;
    this.client = resource.client;
    this.hooks = hooks;
    resource.data = this;
    Surface.implementRequests(resource, this);
    resource.events.destroy.add(() => this.destroy());
  }

  /**
   * The wl_surface request handlers of `surface`. Methods, not arrow
   * functions in properties: tsx (esbuild's keepNames) wraps each of those
   * in __name(), which gives every function a property store of its own,
   * 3 KB per surface; a client may hold thousands.
   */
  private static implementRequests(resource: Resource<"wl_surface">, surface: Surface): void {
    const errors = wl_surface.enums.error;
    resource.implement({
      destroy() {},
      attach(buffer, x, y) {
        if (resource.version >= 5 && (x !== 0 || y !== 0)) {
          resource.postError(errors.invalid_offset, `attach with offset ${x},${y} (use wl_surface.offset)`);
          return;
        }
        if (buffer !== null && shmBufferOf(buffer) === undefined) {
          resource.postError(errors.invalid_size, "only wl_shm buffers are supported");
          return;
        }
        surface.pending.attached = true;
        surface.pending.buffer = buffer;
      },
      damage(x, y, width, height) {
        if (width > 0 && height > 0) addDamage(surface.pending.surfaceDamage, clampRect(x, y, width, height));
      },
      damage_buffer(x, y, width, height) {
        if (width > 0 && height > 0) addDamage(surface.pending.bufferDamage, clampRect(x, y, width, height));
      },
      frame(callback) {
        surface.pending.frames.push(callback);
      },
      set_opaque_region() {},
      set_input_region(region) {
        surface.pending.inputRegion = region === null ? null : (region.data as Region).clone();
      },
      set_buffer_scale(scale) {
        if (scale < 1) {
          resource.postError(errors.invalid_scale, `buffer scale ${scale}`);
          return;
        }
        surface.pending.scale = scale;
      },
      set_buffer_transform(transform) {
        if (transform < 0 || transform > 7) {
          resource.postError(errors.invalid_transform, `buffer transform ${transform}`);
          return;
        }
        // Only the normal transform is drawn; others are accepted (scale-1 output, no rotation).
      },
      offset() {},
      commit() {
        surface.commit();
      },
    });
  }

  /** The root of this surface's subsurface tree. */
  get root(): Surface {
    let sub = this.subsurface;
    if (sub === null) return this;
    while (sub.parent.subsurface !== null) sub = sub.parent.subsurface;
    return sub.parent;
  }

  /** True when this is a subsurface that is synchronized itself or through an ancestor. */
  get effectivelySynchronized(): boolean {
    for (let sub = this.subsurface; sub !== null; sub = sub.parent.subsurface) if (sub.synchronized) return true;
    return false;
  }

  /** The surface's pixels at its logical size (a view of the buffer, or a resample when scaled); null without a live buffer. */
  pixels(): PixelSource | null {
    if (this.buffer === null || this.buffer.destroyed) return null;
    const shm = shmBufferOf(this.buffer);
    if (shm === undefined) return null;
    const pixels = pixelSource(shm, this.scale, this.viewport.source, this.width, this.height, this.scratch);
    // The app shrank its pool's file under the buffer: reading would fault, so the app is cut off.
    if (pixels === null) this.client.postImplementationError("the wl_shm pool's file shrank under a committed buffer");
    return pixels;
  }

  /** The applied frame callbacks are done: each gets done(time) and is destroyed. */
  fireFrameCallbacks(timeMs: number): void {
    const callbacks = this.frameCallbacks;
    if (callbacks.length === 0) return;
    this.frameCallbacks = [];
    for (const callback of callbacks) {
      callback.send("done", timeMs >>> 0);
      callback.destroy();
    }
  }

  /** Releases the current buffer if it is still held (the client may reuse it). */
  releaseBuffer(): void {
    if (!this.bufferHeld) return;
    this.bufferHeld = false;
    if (this.buffer === null || this.buffer.destroyed) return;
    // A client that shrank its pool's file under this buffer is ended here (the pixels read were zeros).
    if (shmBufferOf(this.buffer)?.pool.checkIntact() === false) return;
    this.buffer.send("release");
  }

  private commit(): void {
    if (this.subsurface !== null && this.effectivelySynchronized) {
      this.cached = this.cached === null ? this.pending : mergeState(this.cached, this.pending);
      this.pending = emptyState();
      return;
    }
    if (!this.applyCommit()) return;
    this.hooks.committed(this);
  }

  /** Applies cached then pending state, then the cached state of synchronized children; false after a protocol error. */
  applyCommit(): boolean {
    let state = this.pending;
    this.pending = emptyState();
    if (this.cached !== null) {
      state = mergeState(this.cached, state);
      this.cached = null;
    }
    if (!this.apply(state)) return false;
    if (this.order !== this.pendingOrder && !sameOrder(this.order, this.pendingOrder)) {
      for (const child of this.pendingOrder) if (child !== this) this.damageChild(child);
      this.order = [...this.pendingOrder];
    }
    for (const child of this.order) {
      if (child === this) continue;
      const sub = child.subsurface;
      if (sub === null) continue;
      if (sub.positionPending) {
        this.damageChild(child);
        sub.x = sub.pendingX;
        sub.y = sub.pendingY;
        sub.positionPending = false;
        this.damageChild(child);
      }
    }
    for (const child of this.order) {
      if (child !== this && child.subsurface !== null && child.effectivelySynchronized) {
        if (!child.applyCommit()) return false;
      }
    }
    return true;
  }

  /** Cached state of a synchronized subsurface, applied when its parent commits. */
  get hasCachedState(): boolean {
    return this.cached !== null;
  }

  private damageChild(child: Surface): void {
    const sub = child.subsurface;
    if (sub === null || !child.hasContent) return;
    addDamage(this.damage, { x: sub.x, y: sub.y, width: child.width, height: child.height });
  }

  private apply(state: SurfaceState): boolean {
    const errors = wl_surface.enums.error;
    const oldWidth = this.width;
    const oldHeight = this.height;
    if (state.scale !== undefined) this.scale = state.scale;
    if (state.inputRegion !== undefined) this.inputRegion = state.inputRegion;
    if (state.viewport !== undefined) this.viewport = state.viewport;
    if (state.attached) {
      const previous = this.buffer;
      const sub = this.subsurface;
      if (state.buffer === null && this.hasContent && sub !== null) {
        // A subsurface that hides: what was under it shows again (in the parent's coordinates).
        addDamage(sub.parent.damage, { x: sub.x, y: sub.y, width: this.width, height: this.height });
      }
      if (previous !== state.buffer) this.releaseBuffer();
      this.buffer = state.buffer;
      this.hasContent = state.buffer !== null;
      this.bufferHeld = state.buffer !== null;
    }
    const shm = this.buffer !== null && !this.buffer.destroyed ? shmBufferOf(this.buffer) : undefined;
    if (this.hasContent && shm !== undefined) {
      if (shm.width % this.scale !== 0 || shm.height % this.scale !== 0) {
        this.resource.postError(
          errors.invalid_size,
          `buffer ${shm.width}x${shm.height} is not a multiple of scale ${this.scale}`,
        );
        return false;
      }
      const source = this.viewport.source;
      if (source !== null) {
        if (source.x + source.width > shm.width / this.scale || source.y + source.height > shm.height / this.scale) {
          this.viewportResource?.postError(
            wp_viewport.enums.error.out_of_buffer,
            "source rectangle outside the buffer",
          );
          return false;
        }
      }
      const destination = this.viewport.destination;
      if (destination !== null) {
        this.width = destination.width;
        this.height = destination.height;
      } else if (source !== null) {
        if (!Number.isInteger(source.width) || !Number.isInteger(source.height)) {
          this.viewportResource?.postError(wp_viewport.enums.error.bad_size, "source size is not an integer");
          return false;
        }
        this.width = source.width;
        this.height = source.height;
      } else {
        this.width = shm.width / this.scale;
        this.height = shm.height / this.scale;
      }
    } else if (!this.hasContent) {
      this.width = 0;
      this.height = 0;
    }
    if (oldWidth !== this.width || oldHeight !== this.height) {
      addDamage(this.damage, {
        x: 0,
        y: 0,
        width: Math.max(oldWidth, this.width),
        height: Math.max(oldHeight, this.height),
      });
    }
    const bounds: Rect = { x: 0, y: 0, width: this.width, height: this.height };
    for (const rect of state.surfaceDamage) {
      const clipped = intersect(rect, bounds);
      if (!isEmpty(clipped)) addDamage(this.damage, clipped);
    }
    for (const rect of state.bufferDamage) {
      const clipped = intersect(this.bufferToSurface(rect, shm), bounds);
      if (!isEmpty(clipped)) addDamage(this.damage, clipped);
    }
    this.frameCallbacks.push(...state.frames);
    return true;
  }

  /** Converts a buffer-coordinate rectangle to surface coordinates (scale, viewport crop and stretch; rounding outward). */
  private bufferToSurface(rect: Rect, shm: ShmBuffer | undefined): Rect {
    let x = rect.x / this.scale;
    let y = rect.y / this.scale;
    let width = rect.width / this.scale;
    let height = rect.height / this.scale;
    const source = this.viewport.source;
    if (source !== null) {
      x -= source.x;
      y -= source.y;
    }
    // The source (the whole buffer without a crop) is stretched to the surface's size (a destination).
    const sourceWidth = source?.width ?? (shm === undefined ? this.width : shm.width / this.scale);
    const sourceHeight = source?.height ?? (shm === undefined ? this.height : shm.height / this.scale);
    if (sourceWidth > 0 && sourceHeight > 0) {
      const sx = this.width / sourceWidth;
      const sy = this.height / sourceHeight;
      x *= sx;
      width *= sx;
      y *= sy;
      height *= sy;
    }
    const left = Math.floor(x);
    const top = Math.floor(y);
    return { x: left, y: top, width: Math.ceil(x + width) - left, height: Math.ceil(y + height) - top };
  }

  /** Tears the surface down (its wl_surface is gone): releases the buffer, drops callbacks, detaches children. */
  private destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.releaseBuffer();
    // As libwayland does: the surface's callbacks end with it (delete_id, no done), else the client keeps them.
    for (const callback of [...this.frameCallbacks, ...this.pending.frames]) {
      if (!callback.destroyed) callback.destroy();
    }
    this.frameCallbacks = [];
    this.pending.frames = [];
    const sub = this.subsurface;
    if (sub !== null && !sub.parent.destroyed) {
      const parent = sub.parent;
      if (this.hasContent) addDamage(parent.damage, { x: sub.x, y: sub.y, width: this.width, height: this.height });
      parent.order = parent.order.filter((entry) => entry !== this);
      parent.pendingOrder = parent.pendingOrder.filter((entry) => entry !== this);
    }
    this.hooks.destroyed(this);
  }

  /** The pending state's viewport (wp_viewport requests are double-buffered). */
  pendingViewport(): Viewport {
    if (this.pending.viewport === undefined) {
      this.pending.viewport = { source: this.viewport.source, destination: this.viewport.destination };
    }
    return this.pending.viewport;
  }
}

function sameOrder(a: readonly Surface[], b: readonly Surface[]): boolean {
  return a.length === b.length && a.every((surface, i) => surface === b[i]);
}

function mergeState(older: SurfaceState, newer: SurfaceState): SurfaceState {
  if (newer.attached && older.attached && older.buffer !== null && older.buffer !== newer.buffer) {
    // A cached buffer replaced before it was ever shown: the client may have it back.
    if (!older.buffer.destroyed) older.buffer.send("release");
  }
  return {
    attached: older.attached || newer.attached,
    buffer: newer.attached ? newer.buffer : older.buffer,
    surfaceDamage: mergeDamage(older.surfaceDamage, newer.surfaceDamage),
    bufferDamage: mergeDamage(older.bufferDamage, newer.bufferDamage),
    frames: [...older.frames, ...newer.frames],
    scale: newer.scale ?? older.scale,
    inputRegion: newer.inputRegion !== undefined ? newer.inputRegion : older.inputRegion,
    viewport: newer.viewport ?? older.viewport,
  };
}

/** Clamps a client rectangle to the int32 plane so later sums cannot overflow into nonsense. */
function clampRect(x: number, y: number, width: number, height: number): Rect {
  const limit = 1 << 30;
  const cx = Math.max(-limit, Math.min(limit, x));
  const cy = Math.max(-limit, Math.min(limit, y));
  return { x: cx, y: cy, width: Math.min(width, limit), height: Math.min(height, limit) };
}

/**
 * Where a scaled surface's resampled pixels go, kept while the size stays
 * (most surfaces are never scaled: nothing is allocated for them), with the
 * source column of each target column for the last mapping it was made for.
 */
interface ResampleScratch {
  bytes: Uint8Array | null;
  columns: Int32Array | null;
  /** What `columns` was made for: source x and width, target width, buffer width. */
  columnsFor: readonly [number, number, number, number] | null;
}

/** An empty {@link ResampleScratch}. */
function resampleScratch(): ResampleScratch {
  return { bytes: null, columns: null, columnsFor: null };
}

/**
 * The surface's content at its logical size: a view of the buffer when the
 * buffer's pixels map 1:1 onto the surface (scale 1, no viewport or an
 * integer crop of the same size), else a nearest-neighbour resample of the
 * source rectangle into `scratch` (viewport scaling, buffer scale ≠ 1),
 * done as pixels are read: `rows(y, count, x, width)` resamples only that
 * rectangle (a commit's damage), and each row remembers the span of columns
 * already resampled for this commit, so nothing is resampled twice. Null
 * when the pool's file shrank under the buffer.
 */
function pixelSource(
  shm: ShmBuffer,
  scale: number,
  source: Viewport["source"],
  width: number,
  height: number,
  scratch: ResampleScratch,
): PixelSource | null {
  const bytes = shm.bytes();
  if (bytes === undefined) return null;
  const hasAlpha = shm.format === SHM_FORMAT_ARGB8888;
  // The source rectangle in buffer pixels (a viewport's source is in surface-local units before scaling by buffer scale).
  const sx = source === null ? 0 : source.x * scale;
  const sy = source === null ? 0 : source.y * scale;
  const sw = source === null ? shm.width : source.width * scale;
  const sh = source === null ? shm.height : source.height * scale;
  if (Number.isInteger(sx) && Number.isInteger(sy) && sw === width && sh === height) {
    if (sx === 0 && sy === 0 && width === shm.width && height === shm.height) {
      return { bytes, rows: () => bytes, stride: shm.stride, width, height, hasAlpha };
    }
    const start = sy * shm.stride + sx * 4;
    const end = (sy + height - 1) * shm.stride + (sx + width) * 4;
    const crop = bytes.subarray(start, end);
    return { bytes: crop, rows: () => crop, stride: shm.stride, width, height, hasAlpha };
  }
  const size = width * height * 4;
  // Allocated when first needed: most surfaces are never scaled.
  if (scratch.bytes === null || scratch.bytes.length !== size) scratch.bytes = new Uint8Array(size);
  const target = scratch.bytes;
  const out = new Uint32Array(target.buffer, target.byteOffset, width * height);
  // The source column of each target column, worked out once per mapping (not per commit).
  const key = scratch.columnsFor;
  let columns = scratch.columns;
  if (columns === null || key === null || key[0] !== sx || key[1] !== sw || key[2] !== width || key[3] !== shm.width) {
    columns = new Int32Array(width);
    for (let x = 0; x < width; x++) columns[x] = Math.min(shm.width - 1, Math.floor(sx + ((x + 0.5) * sw) / width));
    scratch.columns = columns;
    scratch.columnsFor = [sx, sw, width, shm.width];
  }
  const sourceColumns = columns;
  // Per row, the span [left, right) of columns resampled for this commit (empty: right ≤ left).
  const spans = new Int32Array(2 * height);
  let complete = false;
  const resample = (from: number, to: number, left: number, right: number): void => {
    if (complete || from >= to || left >= right) return;
    // The pool may have been mapped again (grown) since the commit: read through its current mapping.
    const current = shm.bytes();
    if (current === undefined) return;
    const aligned = current.byteOffset % 4 === 0 && shm.stride % 4 === 0;
    const input = aligned ? new Uint32Array(current.buffer, current.byteOffset, current.byteLength >> 2) : null;
    const view = input === null ? new DataView(current.buffer, current.byteOffset, current.byteLength) : null;
    const rowWords = shm.stride >> 2;
    const columnsOf = (y: number, by: number, a: number, b: number): void => {
      const row = y * width;
      if (input !== null) {
        const sourceRow = by * rowWords;
        for (let x = a; x < b; x++) out[row + x] = input[sourceRow + (sourceColumns[x] as number)] as number;
      } else if (view !== null) {
        for (let x = a; x < b; x++)
          out[row + x] = view.getUint32(by * shm.stride + (sourceColumns[x] as number) * 4, true);
      }
    };
    for (let y = from; y < to; y++) {
      const doneLeft = spans[2 * y] as number;
      const doneRight = spans[2 * y + 1] as number;
      if (doneLeft <= left && right <= doneRight) continue;
      const by = Math.min(shm.height - 1, Math.floor(sy + ((y + 0.5) * sh) / height));
      if (doneRight > doneLeft && left <= doneRight && right >= doneLeft) {
        // Touching what is done: resample the missing ends only; the span grows to cover both.
        if (left < doneLeft) columnsOf(y, by, left, doneLeft);
        if (right > doneRight) columnsOf(y, by, doneRight, right);
        spans[2 * y] = Math.min(left, doneLeft);
        spans[2 * y + 1] = Math.max(right, doneRight);
      } else {
        columnsOf(y, by, left, right);
        // Apart from what is done: the row remembers the wider of the two spans.
        if (right - left > doneRight - doneLeft) {
          spans[2 * y] = left;
          spans[2 * y + 1] = right;
        }
      }
    }
  };
  return {
    get bytes(): Uint8Array {
      resample(0, height, 0, width);
      complete = true;
      return target;
    },
    rows(y: number, count: number, x = 0, columnCount = width - x): Uint8Array {
      resample(Math.max(0, y), Math.min(height, y + count), Math.max(0, x), Math.min(width, x + columnCount));
      return target;
    },
    stride: width * 4,
    width,
    height,
    hasAlpha,
  };
}

/**
 * Copies `rows` rows of `rowBytes` bytes between two pixel buffers of their
 * own strides in one native call (no view per row): how a consumer copies a
 * damaged rectangle of a {@link PixelSource} (the agent into its granted
 * framebuffers). Returns the bytes copied; RangeError when it does not fit.
 */
export function copyPixelRows(source: StridedBytes, target: StridedBytes, rowBytes: number, rows: number): number {
  return copyRect(source, target, rowBytes, rows);
}

/** What the surface layer tells the compositor. */
export interface SurfaceHooks {
  /** A surface applied a commit (not a cached one). */
  committed(surface: Surface): void;
  /** A surface is gone. */
  destroyed(surface: Surface): void;
}

/** The Surface behind a wl_surface resource. */
export function surfaceOf(resource: Resource<"wl_surface">): Surface {
  return resource.data as Surface;
}

/** Every surface of a tree, parents before children, in stacking order. */
export function treeSurfaces(root: Surface): Surface[] {
  const out: Surface[] = [];
  const walk = (surface: Surface): void => {
    for (const entry of surface.order) {
      if (entry === surface) out.push(surface);
      else walk(entry);
    }
  };
  walk(root);
  return out;
}

/** A surface of a tree that is shown, with its position relative to the root surface. */
export interface PlacedSurface {
  surface: Surface;
  x: number;
  y: number;
}

/** The shown surfaces of a tree (a subsurface is shown when it and its ancestors have content), bottom first. */
export function placedSurfaces(root: Surface): PlacedSurface[] {
  const out: PlacedSurface[] = [];
  const walk = (surface: Surface, x: number, y: number): void => {
    if (!surface.hasContent) return;
    for (const entry of surface.order) {
      if (entry === surface) out.push({ surface, x, y });
      else if (entry.subsurface !== null) walk(entry, x + entry.subsurface.x, y + entry.subsurface.y);
    }
  };
  walk(root, 0, 0);
  return out;
}

/**
 * Adds wl_compositor (version 5), wl_subcompositor and wp_viewporter to
 * `display`; `hooks` learns about commits and destroyed surfaces.
 */
export function createSurfaceGlobals(display: Display, hooks: SurfaceHooks): void {
  display.createGlobal("wl_compositor", 5, (compositor) => {
    compositor.implement({
      create_surface(resource) {
        new Surface(resource, hooks);
      },
      create_region(resource) {
        const region = new Region();
        resource.data = region;
        resource.implement({
          destroy() {},
          add(x, y, width, height) {
            if (region.size >= MAX_REGION_OPERATIONS) resource.client.postNoMemory();
            else region.apply(true, clampRect(x, y, width, height));
          },
          subtract(x, y, width, height) {
            if (region.size >= MAX_REGION_OPERATIONS) resource.client.postNoMemory();
            else region.apply(false, clampRect(x, y, width, height));
          },
        });
      },
    });
  });

  display.createGlobal("wl_subcompositor", 1, (subcompositor) => {
    subcompositor.implement({
      destroy() {},
      get_subsurface(resource, surfaceResource, parentResource) {
        const surface = surfaceOf(surfaceResource);
        const parent = surfaceOf(parentResource);
        const bad = wl_subcompositor.enums.error.bad_surface;
        if (surface === parent) {
          subcompositor.postError(bad, "a surface cannot be its own subsurface");
          return;
        }
        if (surface.subsurface !== null || (surface.role !== null && surface.role !== "subsurface")) {
          subcompositor.postError(bad, `wl_surface@${surfaceResource.id} already has a role`);
          return;
        }
        let depth = 0;
        for (let s: Surface | null = parent; s !== null; s = s.subsurface?.parent ?? null) {
          if (s === surface) {
            subcompositor.postError(bad, "the parent is a descendant of the surface");
            return;
          }
          depth += 1;
        }
        // Tree walks recurse: a bounded depth keeps a hostile chain from overflowing the stack.
        if (depth > MAX_SUBSURFACE_DEPTH) {
          subcompositor.postError(bad, `subsurfaces nested deeper than ${MAX_SUBSURFACE_DEPTH}`);
          return;
        }
        surface.role = "subsurface";
        const sub = new Subsurface(resource, surface, parent);
        surface.subsurface = sub;
        parent.pendingOrder = [...parent.pendingOrder, surface];
        implementSubsurface(sub);
      },
    });
  });

  display.createGlobal("wp_viewporter", 1, (viewporter) => {
    viewporter.implement({
      destroy() {},
      get_viewport(resource, surfaceResource) {
        const surface = surfaceOf(surfaceResource);
        if (surface.viewportResource !== null) {
          viewporter.postError(wp_viewporter.enums.error.viewport_exists, "the surface already has a viewport");
          return;
        }
        surface.viewportResource = resource;
        const errors = wp_viewport.enums.error;
        const alive = (): boolean => {
          if (surface.destroyed) {
            resource.postError(errors.no_surface, "the surface is destroyed");
            return false;
          }
          return true;
        };
        resource.implement({
          destroy() {
            if (surface.destroyed) return;
            surface.viewportResource = null;
            const viewport = surface.pendingViewport();
            viewport.source = null;
            viewport.destination = null;
          },
          set_source(x, y, width, height) {
            if (!alive()) return;
            const unset = x === -1 && y === -1 && width === -1 && height === -1;
            if (!unset && (x < 0 || y < 0 || width <= 0 || height <= 0)) {
              resource.postError(errors.bad_value, `source ${x},${y} ${width}x${height}`);
              return;
            }
            surface.pendingViewport().source = unset ? null : { x, y, width, height };
          },
          set_destination(width, height) {
            if (!alive()) return;
            const unset = width === -1 && height === -1;
            // A surface is resampled into memory of its destination size: no larger than the largest output.
            if (
              !unset &&
              (width <= 0 || height <= 0 || width > MAX_OUTPUT_SIZE.width || height > MAX_OUTPUT_SIZE.height)
            ) {
              resource.postError(
                errors.bad_value,
                `destination ${width}x${height} (at most ${MAX_OUTPUT_SIZE.width}x${MAX_OUTPUT_SIZE.height})`,
              );
              return;
            }
            surface.pendingViewport().destination = unset ? null : { width, height };
          },
        });
      },
    });
  });

  function implementSubsurface(sub: Subsurface): void {
    const { resource, surface, parent } = sub;
    const errors = wl_subsurface.enums.error;
    const sibling = (other: Resource<"wl_surface">, above: boolean): void => {
      const target = surfaceOf(other);
      if (surface.destroyed || parent.destroyed) return;
      if (target === surface || (target !== parent && target.subsurface?.parent !== parent)) {
        resource.postError(errors.bad_surface, "not a sibling or the parent");
        return;
      }
      const order = parent.pendingOrder.filter((entry) => entry !== surface);
      const at = order.indexOf(target);
      if (at < 0) {
        resource.postError(errors.bad_surface, "not a sibling or the parent");
        return;
      }
      order.splice(above ? at + 1 : at, 0, surface);
      parent.pendingOrder = order;
    };
    resource.implement({
      destroy() {},
      set_position(x, y) {
        const c = clampRect(x, y, 0, 0);
        sub.pendingX = c.x;
        sub.pendingY = c.y;
        sub.positionPending = true;
      },
      place_above(other) {
        sibling(other, true);
      },
      place_below(other) {
        sibling(other, false);
      },
      set_sync() {
        sub.synchronized = true;
      },
      set_desync() {
        const wasSynchronized = surface.effectivelySynchronized;
        sub.synchronized = false;
        if (wasSynchronized && !surface.effectivelySynchronized && surface.hasCachedState) {
          if (surface.applyCommit()) hooks.committed(surface);
        }
      },
    });
    resource.events.destroy.add(() => {
      if (surface.subsurface === sub) surface.subsurface = null;
      if (!parent.destroyed) {
        if (surface.hasContent)
          addDamage(parent.damage, { x: sub.x, y: sub.y, width: surface.width, height: surface.height });
        parent.order = parent.order.filter((entry) => entry !== surface);
        parent.pendingOrder = parent.pendingOrder.filter((entry) => entry !== surface);
      }
    });
  }
}
