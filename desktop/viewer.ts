/**
 * The viewer half of qubes-gui-desktop: an HTTP and WebSocket server that
 * shows the desktop's one output in a browser page and feeds the browser's
 * input back to the compositor (viewer-api.ts is the seam).
 *
 * Access. A random token (32 bytes, base64url) guards everything: every HTTP
 * request and WebSocket upgrade carries it as the `token` query parameter or
 * as the cookie `qubes_desktop_<port>` (HttpOnly, SameSite=Strict, Path=/;
 * the port is in the name because cookies are per host, not per port), which
 * `GET /?token=…` sets. It is compared in constant time (SHA-256 of both, then
 * timingSafeEqual). Without it: HTTP 401 and nothing else; an upgrade gets
 * `HTTP/1.1 401` on the raw socket. An upgrade whose Origin is present and is
 * not this server's own `http://host:port` gets 403 (cross-site WebSocket
 * hijacking). Paths: `/` the page, `/screenshot.png` the output as a PNG,
 * `/ws` the WebSocket; anything else 404.
 *
 * Wire format (one WebSocket per page, `/ws`):
 * - server → browser, text (JSON):
 *   - `{"type":"hello","width":W,"height":H}`: first on every connection and
 *     again whenever the output's size changes; the next binary frame is
 *     then the whole output.
 *   - `{"type":"cursor","cursor":NAME}`: the CSS cursor over the canvas
 *     (sent after each hello and on every change; only known CSS names).
 * - server → browser, binary frame, all fields u32 little-endian:
 *   `seq, count, count × (x, y, width, height, width × height pixels)`, the
 *   pixels BGRX exactly as the output holds them (row by row, no padding).
 *   Every field and every pixel block starts 4-byte aligned, so the page
 *   reads them through a Uint32Array over the message without a copy.
 *   Only changed regions travel: the output's damage, coalesced
 *   (compositor/'s coalesceDamage, at most 16 rectangles), copied out of
 *   `output.pixels` when the frame is sent, not when the damage happened.
 * - browser → server, text (JSON), every one validated as hostile
 *   (viewer-protocol.ts): `ack {seq}` after a frame is drawn; `move {x,y}`;
 *   `leave`; `button {x,y,button: 0|1|2, pressed}`; `wheel {x,y,axis: 0|1,
 *   steps: ±1..16}`; `key {code: KeyboardEvent.code, pressed}`;
 *   `releaseAll`. A message that is valid JSON but not exactly one of these
 *   is dropped (logged at debug); text that is not JSON, a binary message,
 *   or a message over 64 KiB ends that client's connection.
 *
 * Where BGRX becomes RGBA: in the browser. Measured on this 2-core machine,
 * 1920×1080: copying the rows out of the output in Node took 1.8 ms (median)
 * while swizzling them into RGBA in the same pass took 6.5 ms; in Chromium
 * the swizzle loop plus putImageData took 12.9 ms, against 0.7 ms for
 * putImageData of ready RGBA. The server swizzle would make the whole path
 * about 7 ms shorter, but it costs 4.7 ms more per full frame and per client
 * on the compositor's one thread, which every app's input and commits wait
 * on; the browser's loop runs in its own process. So the server only copies
 * (memcpy speed) and the page swizzles.
 *
 * Backpressure, per client: damage accumulates (coalesced, so bounded in
 * size) while the client has {@link MAX_UNACKED_FRAMES} frames not yet
 * acknowledged or more than {@link MAX_BUFFERED_BYTES} not yet written to
 * its socket; one merged frame goes out when it catches up. A slow browser
 * thus holds at most that much memory, never a queue of frames. Each ack
 * emits `frameShown` with the frame's earliest commit time (the minimum
 * over the output frames merged into it) and the time the ack arrived.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

import type { Logger } from "pino";
import sharp from "sharp";
import { WebSocketServer, type RawData, type WebSocket } from "ws";

import { CURSOR_SHAPE_NAMES, area, coalesceDamage, union, type Rect } from "../compositor/index.ts";
import { Signal } from "../wayland/index.ts";
import { VIEWER_PAGE_CSP, VIEWER_PAGE_HTML } from "./page.ts";
import { encodeFrame, parseClientMessage, type ViewerClientMessage } from "./viewer-protocol.ts";
import type { ViewerInput, ViewerOutput } from "./viewer-api.ts";

/** Frames a client may have sent but not acknowledged; past this its damage waits. */
export const MAX_UNACKED_FRAMES = 2;
/** Bytes a client's socket may hold unwritten before its damage waits (a full 4K frame is 33 MB: one frame always goes). */
export const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
/** The largest message a browser may send (bytes); a larger one ends its connection. */
export const MAX_CLIENT_MESSAGE_BYTES = 64 * 1024;
/** Browsers connected at once; more are refused (503) so memory stays bounded. */
export const DEFAULT_MAX_CLIENTS = 8;
/** How long close() waits for WebSockets to close cleanly before cutting them (ms). */
const CLOSE_GRACE_MS = 1000;

/** CSS cursor keywords the page may be told to show (the cursor-shape names, and "none"); anything else shows "default". */
const CSS_CURSORS: ReadonlySet<string> = new Set([...CURSOR_SHAPE_NAMES.filter((name) => name !== ""), "none"]);

/** Options of {@link startViewer}. */
export interface ViewerOptions {
  /** The output shown; read when a frame is sent. */
  output: ViewerOutput;
  /** Where the browser's input goes. */
  input: ViewerInput;
  /** Address to listen on (default 127.0.0.1: the desktop is for this machine only). */
  host?: string;
  /** TCP port (default 0: any free one). */
  port?: number;
  /** The access token, base64url, at least 16 characters (default: 32 random bytes). */
  token?: string;
  /** Browsers served at once (default {@link DEFAULT_MAX_CLIENTS}). */
  maxClients?: number;
  log: Logger;
}

/** A frame a browser has drawn. */
export interface FrameShown {
  /** The frame's sequence number on its connection. */
  seq: number;
  /** process.hrtime.bigint() of the earliest app commit shown in it, or null when none caused it. */
  commitTimeNs: bigint | null;
  /** process.hrtime.bigint() when the browser's ack arrived. */
  shownNs: bigint;
}

/** A running viewer server. */
export interface Viewer {
  /** The page's address with the token: `http://HOST:PORT/?token=…`. */
  readonly url: string;
  readonly port: number;
  readonly token: string;
  /** Each frame a browser acknowledged (for latency measurement). */
  readonly frameShown: Signal<FrameShown>;
  /** Ends every connection and the server (bounded: connections are cut after a grace period). */
  close(): Promise<void>;
}

/** One connected browser. */
interface ViewerClient {
  readonly id: number;
  readonly ws: WebSocket;
  /** The size of the last hello sent; -1 before the first. */
  helloWidth: number;
  helloHeight: number;
  /** Damage not yet sent, in output coordinates, coalesced (at most MAX_DAMAGE_RECTS). */
  pending: Rect[];
  /** Earliest commit time over the output frames whose damage is pending. */
  pendingCommitNs: bigint | null;
  nextSeq: number;
  /** Frames sent and not yet acknowledged, oldest first. */
  readonly unacked: Array<{ seq: number; commitTimeNs: bigint | null }>;
  /** Keys and buttons this client holds down (evdev codes), released if it goes away. */
  readonly held: Set<number>;
}

function minCommit(a: bigint | null, b: bigint | null): bigint | null {
  if (a === null) return b;
  if (b === null) return a;
  return a < b ? a : b;
}

const TOKEN_PATTERN = /^[A-Za-z0-9_-]{16,256}$/;

/** Starts the viewer server; resolves once it listens. */
export async function startViewer(options: ViewerOptions): Promise<Viewer> {
  const { output, input, log } = options;
  const host = options.host ?? "127.0.0.1";
  const token = options.token ?? randomBytes(32).toString("base64url");
  if (!TOKEN_PATTERN.test(token)) throw new TypeError("viewer token must be 16–256 base64url characters");
  const maxClients = options.maxClients ?? DEFAULT_MAX_CLIENTS;
  const tokenDigest = createHash("sha256").update(token, "utf8").digest();
  const frameShown = new Signal<FrameShown>();
  const clients = new Set<ViewerClient>();
  let nextClientId = 1;
  let cursor = "default";
  let closing: Promise<void> | undefined;

  const server: Server = createServer();
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_CLIENT_MESSAGE_BYTES,
    perMessageDeflate: false,
    clientTracking: false,
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  const cookieName = `qubes_desktop_${port}`;
  const allowedOrigins = originsFor(host, port);
  const wildcard = host === "0.0.0.0" || host === "::";

  /** A page's Origin is this server: its listening address, or on a wildcard address the Host it was reached by. */
  function originAllowed(untrustedOrigin: string, untrustedHost: string | undefined): boolean {
    if (allowedOrigins.has(untrustedOrigin)) return true;
    return wildcard && untrustedHost !== undefined && untrustedOrigin === `http://${untrustedHost}`;
  }

  function authorized(request: IncomingMessage, url: URL): { ok: boolean; viaQuery: boolean } {
    const fromQuery = url.searchParams.get("token");
    if (fromQuery !== null && tokenMatches(fromQuery)) return { ok: true, viaQuery: true };
    const fromCookie = cookieValue(request.headers.cookie, cookieName);
    if (fromCookie !== undefined && tokenMatches(fromCookie)) return { ok: true, viaQuery: false };
    return { ok: false, viaQuery: false };
  }

  function tokenMatches(untrustedCandidate: string): boolean {
    const digest = createHash("sha256").update(untrustedCandidate, "utf8").digest();
    return timingSafeEqual(digest, tokenDigest);
  }

  // HTTP.
  server.on("request", (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? "/", "http://viewer.invalid");
    const access = authorized(request, url);
    if (!access.ok) {
      log.debug({ path: url.pathname }, "viewer: request without the token refused");
      sendText(response, 401, "unauthorized: open the URL with its token\n");
      return;
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.setHeader("Allow", "GET, HEAD");
      sendText(response, 405, "method not allowed\n");
      return;
    }
    if (url.pathname === "/") {
      const headers: Record<string, string> = {
        ...COMMON_HEADERS,
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": VIEWER_PAGE_CSP,
      };
      if (access.viaQuery) headers["Set-Cookie"] = `${cookieName}=${token}; HttpOnly; SameSite=Strict; Path=/`;
      response.writeHead(200, headers);
      response.end(request.method === "HEAD" ? undefined : VIEWER_PAGE_HTML);
      return;
    }
    if (url.pathname === "/screenshot.png") {
      void sendScreenshot(response, request.method === "HEAD");
      return;
    }
    sendText(response, 404, "not found\n");
  });

  async function sendScreenshot(response: ServerResponse, headOnly: boolean): Promise<void> {
    const { width, height } = output;
    const pixels = output.pixels;
    if (width <= 0 || height <= 0 || pixels.length < width * height * 4) {
      sendText(response, 503, "no output\n");
      return;
    }
    // Copied now, in this turn: the output may change while sharp encodes.
    const rgb = Buffer.allocUnsafe(width * height * 3);
    for (let source = 0, target = 0; target < rgb.length; source += 4, target += 3) {
      rgb[target] = pixels[source + 2] as number;
      rgb[target + 1] = pixels[source + 1] as number;
      rgb[target + 2] = pixels[source] as number;
    }
    try {
      const png = await sharp(rgb, { raw: { width, height, channels: 3 } })
        .png()
        .toBuffer();
      response.writeHead(200, { ...COMMON_HEADERS, "Content-Type": "image/png", "Content-Length": png.length });
      response.end(headOnly ? undefined : png);
    } catch (error) {
      log.error({ err: error }, "viewer: screenshot failed");
      if (!response.headersSent) sendText(response, 500, "screenshot failed\n");
      else response.destroy();
    }
  }

  // WebSocket upgrades, checked before ws sees them.
  server.on("upgrade", (request: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on("error", (error) => log.debug({ err: error }, "viewer: upgrade socket error"));
    const url = new URL(request.url ?? "/", "http://viewer.invalid");
    if (!authorized(request, url).ok) {
      log.debug("viewer: WebSocket without the token refused");
      refuseUpgrade(socket, 401, "Unauthorized");
      return;
    }
    const origin = request.headers.origin;
    if (origin !== undefined && !originAllowed(origin, request.headers.host)) {
      log.warn({ origin: sanitize(origin) }, "viewer: WebSocket from a foreign origin refused");
      refuseUpgrade(socket, 403, "Forbidden");
      return;
    }
    if (url.pathname !== "/ws") {
      refuseUpgrade(socket, 404, "Not Found");
      return;
    }
    if (clients.size >= maxClients || closing !== undefined) {
      refuseUpgrade(socket, 503, "Service Unavailable");
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => acceptClient(ws));
  });

  function acceptClient(ws: WebSocket): void {
    const client: ViewerClient = {
      id: nextClientId++,
      ws,
      helloWidth: -1,
      helloHeight: -1,
      pending: [],
      pendingCommitNs: null,
      nextSeq: 0,
      unacked: [],
      held: new Set(),
    };
    clients.add(client);
    log.info({ client: client.id, clients: clients.size }, "viewer: browser connected");
    ws.on("message", (data: RawData, isBinary: boolean) => onClientMessage(client, data, isBinary));
    ws.on("error", (error) => log.debug({ client: client.id, err: error }, "viewer: WebSocket error"));
    ws.on("close", (code: number) => {
      clients.delete(client);
      log.info({ client: client.id, code, clients: clients.size }, "viewer: browser disconnected");
      if (client.held.size > 0) {
        client.held.clear();
        callInput(client, () => input.releaseAll());
      }
    });
    flush(client);
  }

  function onClientMessage(client: ViewerClient, data: RawData, isBinary: boolean): void {
    if (isBinary) {
      log.debug({ client: client.id }, "viewer: binary message from a browser; disconnecting it");
      client.ws.close(1003, "text messages only");
      return;
    }
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    const text = bytes.toString("utf8");
    const result = parseClientMessage(text, output.width, output.height);
    if (!result.ok) {
      if (result.fatal) {
        log.debug({ client: client.id, reason: result.reason }, "viewer: garbage from a browser; disconnecting it");
        client.ws.close(1008, "malformed message");
      } else {
        log.debug({ client: client.id, reason: result.reason }, "viewer: browser message dropped");
      }
      return;
    }
    callInput(client, () => handleMessage(client, result.message));
  }

  /** Runs input code so that whatever it throws stays in this client's handler (logged). */
  function callInput(client: ViewerClient, body: () => void): void {
    try {
      body();
    } catch (error) {
      log.error({ client: client.id, err: error }, "viewer: input handler threw");
    }
  }

  function handleMessage(client: ViewerClient, message: ViewerClientMessage): void {
    switch (message.type) {
      case "ack": {
        const index = client.unacked.findIndex((frame) => frame.seq === message.seq);
        if (index < 0) {
          log.debug({ client: client.id, seq: message.seq }, "viewer: ack of a frame not in flight dropped");
          return;
        }
        const shownNs = process.hrtime.bigint();
        // Frames arrive and are drawn in order: this ack covers the older ones too.
        const acked = client.unacked.splice(0, index + 1);
        for (const frame of acked) frameShown.emit({ seq: frame.seq, commitTimeNs: frame.commitTimeNs, shownNs });
        flush(client);
        return;
      }
      case "move":
        input.pointerMove(message.x, message.y);
        return;
      case "leave":
        input.pointerLeave();
        return;
      case "button":
        input.pointerMove(message.x, message.y);
        if (message.pressed) client.held.add(message.code);
        else client.held.delete(message.code);
        input.pointerButton(message.code, message.pressed);
        return;
      case "wheel":
        input.pointerMove(message.x, message.y);
        input.pointerAxis(message.axis, message.steps);
        return;
      case "key":
        if (message.pressed) client.held.add(message.code);
        else client.held.delete(message.code);
        input.key(message.code, message.pressed);
        return;
      case "releaseAll":
        client.held.clear();
        input.releaseAll();
        return;
    }
  }

  /** Sends what the client is owed (a hello, pending damage) as far as its backpressure allows. */
  function flush(client: ViewerClient): void {
    const ws = client.ws;
    if (ws.readyState !== ws.OPEN) return;
    const { width, height } = output;
    const bounds: Rect = { x: 0, y: 0, width, height };
    if (client.helloWidth !== width || client.helloHeight !== height) {
      client.helloWidth = width;
      client.helloHeight = height;
      ws.send(JSON.stringify({ type: "hello", width, height }));
      ws.send(JSON.stringify({ type: "cursor", cursor }));
      client.pending = width > 0 && height > 0 ? [bounds] : [];
    }
    if (client.pending.length === 0) return;
    if (client.unacked.length >= MAX_UNACKED_FRAMES || ws.bufferedAmount > MAX_BUFFERED_BYTES) return;
    if (output.pixels.length < width * height * 4) {
      log.error({ width, height, bytes: output.pixels.length }, "viewer: output buffer smaller than its size");
      return;
    }
    let rects = coalesceDamage(client.pending, bounds);
    // Overlapping rectangles never cost more than their bounding box.
    if (rects.length > 1) {
      const box = rects.reduce(union);
      if (rects.reduce((sum, rect) => sum + area(rect), 0) >= area(box)) rects = [box];
    }
    const seq = client.nextSeq;
    client.nextSeq = (client.nextSeq + 1) >>> 0;
    client.unacked.push({ seq, commitTimeNs: client.pendingCommitNs });
    client.pending = [];
    client.pendingCommitNs = null;
    const frame = encodeFrame(seq, rects, output.pixels, width * 4);
    // Written to the socket: room may have opened under MAX_BUFFERED_BYTES.
    ws.send(frame, { binary: true }, (error) => {
      if (error === undefined || error === null) flush(client);
    });
  }

  const removeFrameListener = output.events.frame.add(({ damage, commitTimeNs }) => {
    const bounds: Rect = { x: 0, y: 0, width: output.width, height: output.height };
    for (const client of clients) {
      client.pending = coalesceDamage([...client.pending, ...damage], bounds);
      client.pendingCommitNs = minCommit(client.pendingCommitNs, commitTimeNs);
      flush(client);
    }
  });
  const removeCursorListener = output.events.cursor.add((untrustedCursor) => {
    const next = CSS_CURSORS.has(untrustedCursor) ? untrustedCursor : "default";
    if (next === cursor) return;
    cursor = next;
    const message = JSON.stringify({ type: "cursor", cursor });
    for (const client of clients) {
      if (client.helloWidth >= 0 && client.ws.readyState === client.ws.OPEN) client.ws.send(message);
    }
  });

  async function closeViewer(): Promise<void> {
    removeFrameListener();
    removeCursorListener();
    const open = [...clients];
    const closed = Promise.all(
      open.map((client) => new Promise<void>((resolve) => client.ws.once("close", () => resolve()))),
    );
    for (const client of open) client.ws.close(1001, "viewer closing");
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS)))]);
    clearTimeout(timer);
    for (const client of open) client.ws.terminate();
    const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await serverClosed;
    wss.close();
    log.info("viewer: closed");
  }

  log.info({ host, port }, "viewer: listening");
  return {
    url: `http://${urlHost}:${port}/?token=${token}`,
    port,
    token,
    frameShown,
    close: () => (closing ??= closeViewer()),
  };
}

/** Headers of every authorised response. */
const COMMON_HEADERS: Readonly<Record<string, string>> = {
  "Cache-Control": "no-store",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
};

function sendText(response: ServerResponse, status: number, text: string): void {
  response.writeHead(status, { ...COMMON_HEADERS, "Content-Type": "text/plain; charset=utf-8" });
  response.end(text);
}

/** Answers an upgrade on the raw socket and closes it once the answer is written. */
function refuseUpgrade(socket: Socket, status: number, reason: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.once("finish", () => socket.destroy());
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/** The value of cookie `name` in a Cookie header, if present. */
function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(";")) {
    const equals = part.indexOf("=");
    if (equals < 0) continue;
    if (part.slice(0, equals).trim() === name) return part.slice(equals + 1).trim();
  }
  return undefined;
}

/** The origins a page served by this server has: its own address, and the loopback names when it listens on loopback. */
function originsFor(host: string, port: number): Set<string> {
  const names = [host.includes(":") ? `[${host}]` : host];
  if (host === "127.0.0.1" || host === "::1" || host === "localhost") names.push("127.0.0.1", "localhost", "[::1]");
  return new Set(names.map((name) => `http://${name}:${port}`));
}

/** An untrusted string made safe for a log line: printable ASCII, at most 200 characters. */
function sanitize(untrusted: string): string {
  return untrusted.replace(/[^\x20-\x7e]/g, "?").slice(0, 200);
}
