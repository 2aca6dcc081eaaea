/**
 * A minimal RFB (VNC) 3.8 client for wayvnc's Unix socket: the handshake
 * with security type None, then pointer and key events. wayvnc (0.5, Debian
 * 12) creates its virtual pointer and keyboard on sway's seat only once a
 * client connects, so tests connect this client to give the seat input
 * devices that stay, and use it to move, click, scroll and type.
 *
 * RFB facts used (RFC 6143): ProtocolVersion "RFB 003.008\n"; security type
 * None = 1 with a u32 SecurityResult; ClientInit = 1 byte (shared); the
 * ServerInit ends with a u32 name length and the name; KeyEvent = type 4,
 * down-flag u8, 2 padding, keysym u32; PointerEvent = type 5, button mask
 * u8 (bit 0 left, 1 middle, 2 right, 3/4 wheel up/down, 5/6 wheel
 * left/right), x u16, y u16. All big-endian.
 */
import net from "node:net";

/** X keysyms the tests type. */
export const XK = {
  Return: 0xff0d,
  Shift_L: 0xffe1,
  Control_L: 0xffe3,
  Alt_L: 0xffe9,
} as const;

/** Pointer buttons as RFB mask bits. */
export const VNC_LEFT = 1;
export const VNC_MIDDLE = 2;
export const VNC_RIGHT = 4;
export const VNC_WHEEL_UP = 8;
export const VNC_WHEEL_DOWN = 16;

/** A connected RFB client. */
export class VncClient {
  readonly width: number;
  readonly height: number;
  readonly #socket: net.Socket;
  #x = 0;
  #y = 0;
  #buttons = 0;

  private constructor(socket: net.Socket, width: number, height: number) {
    this.#socket = socket;
    this.width = width;
    this.height = height;
    // The server sends nothing unless asked (Bell or clipboard at most): drain it.
    socket.on("data", () => undefined);
  }

  /** Connects to wayvnc's Unix socket and completes the handshake; rejects naming the step that failed. */
  static async connect(socketPath: string, timeoutMs = 10_000): Promise<VncClient> {
    const socket = net.connect(socketPath);
    const reader = new Reader(socket);
    const timer = setTimeout(
      () => socket.destroy(new Error(`the VNC handshake with ${socketPath} took over ${timeoutMs} ms`)),
      timeoutMs,
    );
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("error", reject);
      });
      const version = (await reader.read(12)).toString("latin1");
      if (!version.startsWith("RFB 003.")) throw new Error(`not an RFB server: ${JSON.stringify(version)}`);
      socket.write("RFB 003.008\n");
      const count = (await reader.read(1))[0] as number;
      if (count === 0) {
        const length = (await reader.read(4)).readUInt32BE(0);
        throw new Error(`the VNC server refused: ${(await reader.read(length)).toString("utf8")}`);
      }
      const types = [...(await reader.read(count))];
      if (!types.includes(1)) throw new Error(`the VNC server offers no "None" security (types ${types.join(",")})`);
      socket.write(Uint8Array.of(1));
      const result = (await reader.read(4)).readUInt32BE(0);
      if (result !== 0) throw new Error(`VNC security handshake failed (${result})`);
      socket.write(Uint8Array.of(1));
      const init = await reader.read(24);
      const nameLength = init.readUInt32BE(20);
      await reader.read(nameLength);
      reader.detach();
      return new VncClient(socket, init.readUInt16BE(0), init.readUInt16BE(2));
    } catch (error) {
      socket.destroy();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Moves the pointer to (x, y) on the output, buttons as they are. */
  move(x: number, y: number): void {
    this.#x = x;
    this.#y = y;
    this.#pointer();
  }

  /** Presses and releases `button` (a VNC_* mask bit) at the pointer. */
  click(button: number): void {
    this.press(button);
    this.release(button);
  }

  press(button: number): void {
    this.#buttons |= button;
    this.#pointer();
  }

  release(button: number): void {
    this.#buttons &= ~button;
    this.#pointer();
  }

  /** One wheel step (VNC_WHEEL_UP or VNC_WHEEL_DOWN). */
  scroll(direction: number): void {
    this.click(direction);
  }

  /** Presses or releases the key of `keysym`. */
  key(keysym: number, down: boolean): void {
    const message = Buffer.alloc(8);
    message[0] = 4;
    message[1] = down ? 1 : 0;
    message.writeUInt32BE(keysym, 4);
    this.#socket.write(message);
  }

  /** Types ASCII text (each character's keysym is its code), with shift for capitals and symbols the server resolves. */
  type(text: string): void {
    for (const char of text) {
      const keysym = char === "\n" ? XK.Return : (char.codePointAt(0) as number);
      this.key(keysym, true);
      this.key(keysym, false);
    }
  }

  /** Holds `modifiers` (keysyms) around a key press. */
  chord(modifiers: readonly number[], keysym: number): void {
    for (const modifier of modifiers) this.key(modifier, true);
    this.key(keysym, true);
    this.key(keysym, false);
    for (const modifier of [...modifiers].reverse()) this.key(modifier, false);
  }

  /** Resolves once everything written so far has left this process. */
  flush(): Promise<void> {
    return new Promise((resolve) => this.#socket.write(new Uint8Array(0), () => resolve()));
  }

  close(): void {
    this.#socket.destroy();
  }

  #pointer(): void {
    const message = Buffer.alloc(6);
    message[0] = 5;
    message[1] = this.#buttons;
    message.writeUInt16BE(Math.max(0, Math.min(0xffff, this.#x)), 2);
    message.writeUInt16BE(Math.max(0, Math.min(0xffff, this.#y)), 4);
    this.#socket.write(message);
  }
}

/** Reads exact byte counts from a socket during the handshake. */
class Reader {
  readonly #socket: net.Socket;
  #buffered = Buffer.alloc(0);
  #wanted: { count: number; resolve: (bytes: Buffer) => void; reject: (error: Error) => void } | null = null;

  constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on("data", this.#onData);
    socket.on("error", this.#onError);
    socket.on("close", this.#onClose);
  }

  read(count: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.#wanted = { count, resolve, reject };
      this.#check();
    });
  }

  detach(): void {
    this.#socket.off("data", this.#onData);
    this.#socket.off("error", this.#onError);
    this.#socket.off("close", this.#onClose);
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#buffered = Buffer.concat([this.#buffered, chunk]);
    this.#check();
  };

  readonly #onError = (error: Error): void => this.#wanted?.reject(error);

  readonly #onClose = (): void => this.#wanted?.reject(new Error("the VNC server closed the connection"));

  #check(): void {
    const wanted = this.#wanted;
    if (wanted === null || this.#buffered.length < wanted.count) return;
    this.#wanted = null;
    const bytes = this.#buffered.subarray(0, wanted.count);
    this.#buffered = this.#buffered.subarray(wanted.count);
    wanted.resolve(Buffer.from(bytes));
  }
}
