/**
 * A Wayland client of ours (on wayland/'s client side) that shows one
 * toplevel filled with a known pattern, and then changes chosen rectangles
 * with exact damage: what the agent tests compare pixel for pixel and what
 * the agent benchmark commits.
 */
import { ClientShmPool, SHM_FORMAT_XRGB8888, connect, type ClientConnection, type Proxy } from "../../wayland/index.ts";

/** A rectangle in buffer pixels. */
export interface PatternRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The pattern's pixel (0x00RRGGBB) at (x, y) after `generation` changes of the rectangle it is in. */
export function patternPixel(x: number, y: number, generation = 0): number {
  const base = (x & 0xff) | ((y & 0xff) << 8) | ((((x * 3 + y) >> 4) & 0xff) << 16);
  return (base ^ (generation * 0x5a3c1f)) & 0xffffff;
}

interface Buffer {
  proxy: Proxy<"wl_buffer">;
  view: DataView;
  busy: boolean;
  released: Array<() => void>;
}

/** A toplevel with two buffers drawn with the pattern. */
export class PatternClient {
  readonly connection: ClientConnection;
  /** The xdg_toplevel, for tests that make window-state requests. */
  readonly toplevel: Proxy<"xdg_toplevel">;
  /** Every xdg_toplevel.configure received: size and states (xdg_toplevel.state values). */
  readonly configures: Array<{ width: number; height: number; states: number[] }>;
  readonly width: number;
  readonly height: number;
  /** Generation of each pixel's rectangle as last committed (row-major). */
  readonly #generation: Uint16Array;
  readonly #surface: Proxy<"wl_surface">;
  readonly #buffers: [Buffer, Buffer];
  /** The top byte of every pixel written, shifted into place. */
  readonly #xBits: number;
  #next = 0;

  /** The two buffers' pool: its memfd and mapping are released on close. */
  #pool: ClientShmPool | null = null;

  private constructor(
    connection: ClientConnection,
    toplevel: Proxy<"xdg_toplevel">,
    configures: PatternClient["configures"],
    surface: Proxy<"wl_surface">,
    buffers: [Buffer, Buffer],
    width: number,
    height: number,
    xBits: number,
  ) {
    this.#xBits = xBits;
    this.connection = connection;
    this.toplevel = toplevel;
    this.configures = configures;
    this.#surface = surface;
    this.#buffers = buffers;
    this.width = width;
    this.height = height;
    this.#generation = new Uint16Array(width * height);
  }

  /** Connects to `socketPath` and maps a `width` × `height` toplevel titled `title` showing the pattern. */
  /**
   * `xByte` is what the unused top byte of each XRGB pixel holds (0 by
   * default); weston-screenshooter's PNG reads that byte as alpha, so a
   * client checked through it writes 0xff there.
   */
  static async open(
    socketPath: string,
    width: number,
    height: number,
    title = "pattern",
    options: { xByte?: number } = {},
  ): Promise<PatternClient> {
    const connection = await connect({ display: socketPath });
    const surface = connection.bind("wl_compositor", 4).request("create_surface");
    const shm = connection.bind("wl_shm", 1);
    const wmBase = connection.bind("xdg_wm_base", 2);
    wmBase.on("ping", (serial) => wmBase.request("pong", serial));
    const xdgSurface = wmBase.request("get_xdg_surface", surface);
    const toplevel = xdgSurface.request("get_toplevel");
    toplevel.request("set_title", title);
    toplevel.request("set_app_id", "test.pattern");
    const configures: PatternClient["configures"] = [];
    toplevel.on("configure", (width, height, states) => {
      const list = new Uint32Array(states.buffer.slice(states.byteOffset, states.byteOffset + states.byteLength));
      configures.push({ width, height, states: [...list] });
    });
    const configured = new Promise<number>((resolve) => xdgSurface.on("configure", (serial) => resolve(serial)));
    surface.request("commit");
    xdgSurface.request("ack_configure", await configured);
    xdgSurface.on("configure", (serial) => xdgSurface.request("ack_configure", serial));
    const bytes = width * height * 4;
    const xBits = ((options.xByte ?? 0) & 0xff) * 0x1000000;
    const pool = new ClientShmPool(shm, bytes * 2);
    const buffers = [0, 1].map((index) => {
      const created = pool.createBuffer(index * bytes, width, height, width * 4, SHM_FORMAT_XRGB8888);
      const buffer: Buffer = {
        proxy: created.proxy,
        view: new DataView(created.bytes.buffer, created.bytes.byteOffset, created.bytes.byteLength),
        busy: false,
        released: [],
      };
      created.proxy.on("release", () => {
        buffer.busy = false;
        for (const wake of buffer.released.splice(0)) wake();
      });
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) buffer.view.setUint32((y * width + x) * 4, patternPixel(x, y) | xBits, true);
      }
      return buffer;
    }) as [Buffer, Buffer];
    const client = new PatternClient(connection, toplevel, configures, surface, buffers, width, height, xBits);
    client.#pool = pool;
    await client.commit({ x: 0, y: 0, width, height }, false);
    return client;
  }

  /** The pixel (0x00RRGGBB) the window should show at (x, y) after the last commit. */
  expected(x: number, y: number): number {
    return patternPixel(x, y, this.#generation[y * this.width + x] as number);
  }

  /**
   * Commits the next buffer with `rect` changed to the next generation of
   * the pattern (or unchanged when `change` is false), damaged exactly there.
   * Waits for the buffer to be free first; resolves once the commit is sent.
   */
  async commit(rect: PatternRect, change = true): Promise<void> {
    const buffer = this.#buffers[this.#next] as Buffer;
    this.#next ^= 1;
    if (buffer.busy) await new Promise<void>((resolve) => buffer.released.push(resolve));
    if (change) {
      for (let y = rect.y; y < rect.y + rect.height; y++) {
        for (let x = rect.x; x < rect.x + rect.width; x++) {
          const at = y * this.width + x;
          this.#generation[at] = (this.#generation[at] as number) + 1;
        }
      }
    }
    // Bring this buffer up to date everywhere the other one changed since (both hold every generation).
    for (let y = 0; y < this.height; y++) {
      for (let x = 0; x < this.width; x++) {
        const at = (y * this.width + x) * 4;
        const want = (this.expected(x, y) | this.#xBits) >>> 0;
        if (buffer.view.getUint32(at, true) !== want) buffer.view.setUint32(at, want, true);
      }
    }
    buffer.busy = true;
    this.#surface.request("attach", buffer.proxy, 0, 0);
    this.#surface.request("damage_buffer", rect.x, rect.y, rect.width, rect.height);
    this.#surface.request("commit");
  }

  /** Commits a buffer that is already drawn (for benchmarks: no drawing cost), damaging `rect`. */
  async commitPrepared(rect: PatternRect): Promise<void> {
    const buffer = this.#buffers[this.#next] as Buffer;
    this.#next ^= 1;
    if (buffer.busy) await new Promise<void>((resolve) => buffer.released.push(resolve));
    buffer.busy = true;
    this.#surface.request("attach", buffer.proxy, 0, 0);
    this.#surface.request("damage_buffer", rect.x, rect.y, rect.width, rect.height);
    this.#surface.request("commit");
  }

  /**
   * Like {@link commitPrepared}, with a frame callback: resolves when the
   * compositor says the frame was shown (the agent: copied and announced),
   * the pacing a real app follows.
   */
  async commitPreparedAndWait(rect: PatternRect): Promise<void> {
    const buffer = this.#buffers[this.#next] as Buffer;
    if (buffer.busy) await new Promise<void>((resolve) => buffer.released.push(resolve));
    const shown = new Promise<void>((resolve) => this.#surface.request("frame").on("done", () => resolve()));
    await this.commitPrepared(rect);
    await shown;
  }

  /**
   * Binds the seat's pointer and, at every pointer enter, sets a cursor
   * image of its own (a 1×1 surface), as themed apps do.
   */
  useCursorImage(): void {
    const compositor = this.connection.bind("wl_compositor", 4);
    const cursor = compositor.request("create_surface");
    const pointer = this.connection.bind("wl_seat", 5).request("get_pointer");
    pointer.on("enter", (serial) => pointer.request("set_cursor", serial, cursor, 0, 0));
  }

  /** Disconnects (the window goes away). */
  close(): void {
    this.#pool?.destroy();
    this.#pool = null;
    this.connection.destroy();
  }
}
