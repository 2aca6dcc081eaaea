/**
 * The viewer page: one self-contained HTML document (inline script and
 * style, no external resource, no build step) that shows the desktop's
 * output on a canvas and sends the browser's input back. The wire format it
 * speaks is described in viewer.ts.
 *
 * The script and the style are allowed by their SHA-256 hashes in the
 * Content-Security-Policy, so no other inline script runs in the page
 * ('unsafe-inline' is never granted).
 */
import { createHash } from "node:crypto";

/** The page's script. Plain ES2020, run as is by the browser. */
const SCRIPT = String.raw`
"use strict";
(() => {
  const canvas = document.getElementById("output");
  const status = document.getElementById("status");
  const ctx = canvas.getContext("2d", { alpha: false });
  let socket = null;
  let width = 0;
  let height = 0;
  let pointerX = 0;
  let pointerY = 0;
  let wheelX = 0;
  let wheelY = 0;
  const buttonsDown = new Set();
  const keysDown = new Set();
  /** Frames drawn (for tests and benchmarks: window.viewerStats). */
  const stats = { frames: 0, lastSeq: -1, width: 0, height: 0, connected: false };
  window.viewerStats = stats;

  function setStatus(text) {
    status.textContent = text;
    status.hidden = text === "";
  }

  function send(message) {
    if (socket !== null && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  function resize(w, h) {
    width = w;
    height = h;
    canvas.width = w;
    canvas.height = h;
    // One output pixel per device pixel.
    const ratio = window.devicePixelRatio || 1;
    canvas.style.width = w / ratio + "px";
    canvas.style.height = h / ratio + "px";
    stats.width = w;
    stats.height = h;
  }

  // Binary frame: u32 seq, u32 count, then count × (u32 x, y, w, h, w×h BGRX pixels), little-endian.
  function drawFrame(buffer) {
    if (buffer.byteLength < 8) return;
    const head = new DataView(buffer);
    const seq = head.getUint32(0, true);
    const count = head.getUint32(4, true);
    let offset = 8;
    for (let r = 0; r < count; r++) {
      if (offset + 16 > buffer.byteLength) return;
      const x = head.getUint32(offset, true);
      const y = head.getUint32(offset + 4, true);
      const w = head.getUint32(offset + 8, true);
      const h = head.getUint32(offset + 12, true);
      offset += 16;
      const n = w * h;
      if (w === 0 || h === 0 || offset + n * 4 > buffer.byteLength) return;
      const source = new Uint32Array(buffer, offset, n);
      const image = new ImageData(w, h);
      const target = new Uint32Array(image.data.buffer);
      // BGRX little-endian reads as 0xXXRRGGBB; RGBA little-endian is 0xAABBGGRR.
      for (let i = 0; i < n; i++) {
        const v = source[i];
        target[i] = 0xff000000 | ((v & 0xff) << 16) | (v & 0xff00) | ((v >>> 16) & 0xff);
      }
      ctx.putImageData(image, x, y);
      offset += n * 4;
    }
    stats.frames++;
    stats.lastSeq = seq;
    send({ type: "ack", seq });
  }

  function onText(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (message.type === "hello") resize(message.width, message.height);
    else if (message.type === "cursor" && typeof message.cursor === "string") canvas.style.cursor = message.cursor;
  }

  function connect() {
    setStatus("connecting…");
    const url = new URL("/ws", window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.search = "";
    const ws = new WebSocket(url.href);
    ws.binaryType = "arraybuffer";
    socket = ws;
    ws.onopen = () => {
      stats.connected = true;
      setStatus("");
      canvas.focus();
    };
    ws.onmessage = (event) => {
      if (typeof event.data === "string") onText(event.data);
      else drawFrame(event.data);
    };
    ws.onclose = () => {
      stats.connected = false;
      if (socket === ws) socket = null;
      setStatus("disconnected: reconnecting…");
      setTimeout(connect, 2000);
    };
  }

  function positionOf(event) {
    const box = canvas.getBoundingClientRect();
    const x = box.width > 0 ? ((event.clientX - box.left) * width) / box.width : 0;
    const y = box.height > 0 ? ((event.clientY - box.top) * height) / box.height : 0;
    pointerX = Math.min(Math.max(Math.floor(x), 0), Math.max(width - 1, 0));
    pointerY = Math.min(Math.max(Math.floor(y), 0), Math.max(height - 1, 0));
  }

  function releaseAll() {
    if (keysDown.size === 0 && buttonsDown.size === 0) return;
    keysDown.clear();
    buttonsDown.clear();
    send({ type: "releaseAll" });
  }

  canvas.addEventListener("mousemove", (event) => {
    if (buttonsDown.size > 0) return; // the window listener follows a drag
    positionOf(event);
    send({ type: "move", x: pointerX, y: pointerY });
  });
  window.addEventListener("mousemove", (event) => {
    if (buttonsDown.size === 0) return;
    positionOf(event);
    send({ type: "move", x: pointerX, y: pointerY });
  });
  canvas.addEventListener("mouseleave", () => {
    if (buttonsDown.size === 0) send({ type: "leave" });
  });
  canvas.addEventListener("mousedown", (event) => {
    event.preventDefault();
    canvas.focus();
    if (event.button > 2 || buttonsDown.has(event.button)) return;
    positionOf(event);
    buttonsDown.add(event.button);
    send({ type: "button", x: pointerX, y: pointerY, button: event.button, pressed: true });
  });
  window.addEventListener("mouseup", (event) => {
    if (!buttonsDown.has(event.button)) return;
    event.preventDefault();
    positionOf(event);
    buttonsDown.delete(event.button);
    send({ type: "button", x: pointerX, y: pointerY, button: event.button, pressed: false });
  });
  canvas.addEventListener("contextmenu", (event) => event.preventDefault());
  canvas.addEventListener(
    "wheel",
    (event) => {
      event.preventDefault();
      positionOf(event);
      // One notch: 100 px (Chromium's pixel step), 3 lines, or a page.
      const scale = event.deltaMode === 1 ? 100 / 3 : event.deltaMode === 2 ? 100 : 1;
      wheelY += event.deltaY * scale;
      wheelX += event.deltaX * scale;
      const stepsY = Math.trunc(wheelY / 100);
      const stepsX = Math.trunc(wheelX / 100);
      wheelY -= stepsY * 100;
      wheelX -= stepsX * 100;
      if (stepsY !== 0) send({ type: "wheel", x: pointerX, y: pointerY, axis: 0, steps: clampSteps(stepsY) });
      if (stepsX !== 0) send({ type: "wheel", x: pointerX, y: pointerY, axis: 1, steps: clampSteps(stepsX) });
    },
    { passive: false },
  );
  function clampSteps(steps) {
    return Math.min(Math.max(steps, -16), 16);
  }

  // Every key goes to the apps, browser shortcuts included (those the browser lets a page take).
  canvas.addEventListener("keydown", (event) => {
    event.preventDefault();
    event.stopPropagation();
    if (event.repeat || keysDown.has(event.code)) return; // the app side repeats
    keysDown.add(event.code);
    send({ type: "key", code: event.code, pressed: true });
  });
  canvas.addEventListener("keyup", (event) => {
    event.preventDefault();
    event.stopPropagation();
    if (!keysDown.delete(event.code)) return;
    send({ type: "key", code: event.code, pressed: false });
  });
  canvas.addEventListener("blur", releaseAll);
  window.addEventListener("blur", releaseAll);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible") releaseAll();
  });

  // The token came in the query; the cookie now carries it. Keep it out of the address bar and history.
  if (window.location.search !== "") window.history.replaceState(null, "", "/");
  connect();
})();
`;

const STYLE = `
html, body { margin: 0; padding: 0; background: #202020; overflow: hidden; }
canvas { display: block; image-rendering: pixelated; outline: none; }
#status { position: fixed; top: 8px; left: 8px; padding: 4px 8px; font: 13px sans-serif;
  color: #fff; background: rgba(0, 0, 0, 0.7); border-radius: 4px; pointer-events: none; }
`;

/** The CSP source of an inline block: its SHA-256, base64. */
function hashSource(text: string): string {
  return `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`;
}

/** The page document served at `/`. */
export const VIEWER_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Qubes desktop</title>
<style>${STYLE}</style>
</head>
<body>
<canvas id="output" width="1" height="1" tabindex="0"></canvas>
<div id="status">connecting…</div>
<script>${SCRIPT}</script>
</body>
</html>
`;

/**
 * The page's Content-Security-Policy: nothing but its own inline script and
 * style (by hash) and WebSockets to its own origin ('self' covers ws: of the
 * same host in current browsers); no frames, forms, plugins or base changes.
 */
export const VIEWER_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${hashSource(SCRIPT)}`,
  `style-src ${hashSource(STYLE)}`,
  "connect-src 'self'",
  "img-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");
