/**
 * Text for the demo app: a line of text rasterised by sharp (librsvg) from an
 * SVG `<text>` into an alpha mask, and that mask blended in one colour into a
 * {@link Canvas}. Rendering is asynchronous (sharp runs on the thread pool),
 * so the app renders first and blends the finished mask in one synchronous
 * step: a buffer never shows half a text.
 */
import sharp from "sharp";

import { intersect, type Rect } from "./layout.ts";

/** Pixels the app draws into: 0x00RRGGBB per pixel, row-major, `width` per row (XRGB8888 on a little-endian machine). */
export interface Canvas {
  readonly width: number;
  readonly height: number;
  readonly pixels: Uint32Array;
}

/** A new canvas filled with `color`. */
export function createCanvas(width: number, height: number, color: number): Canvas {
  const pixels = new Uint32Array(width * height);
  pixels.fill(color);
  return { width, height, pixels };
}

/** Fills `rect` (clipped to the canvas) with `color`. */
export function fillRect(canvas: Canvas, rect: Rect, color: number): void {
  const clipped = intersect(rect, { x: 0, y: 0, width: canvas.width, height: canvas.height });
  if (clipped === null) return;
  for (let y = clipped.y; y < clipped.y + clipped.height; y++) {
    const start = y * canvas.width + clipped.x;
    canvas.pixels.fill(color, start, start + clipped.width);
  }
}

/** Draws the 1-pixel outline of `rect` in `color`. */
export function strokeRect(canvas: Canvas, rect: Rect, color: number): void {
  if (rect.width === 0 || rect.height === 0) return;
  fillRect(canvas, { x: rect.x, y: rect.y, width: rect.width, height: 1 }, color);
  fillRect(canvas, { x: rect.x, y: rect.y + rect.height - 1, width: rect.width, height: 1 }, color);
  fillRect(canvas, { x: rect.x, y: rect.y, width: 1, height: rect.height }, color);
  fillRect(canvas, { x: rect.x + rect.width - 1, y: rect.y, width: 1, height: rect.height }, color);
}

/** A rasterised line of text: one coverage byte (0..255) per pixel. */
export interface TextMask {
  readonly text: string;
  readonly width: number;
  readonly height: number;
  readonly alpha: Uint8Array;
  /** One past the rightmost column with any ink (0 for an empty or blank text): the text's drawn width. */
  readonly inkWidth: number;
}

/** How to render a text. */
export interface TextStyle {
  /** Font size in pixels. */
  size: number;
  bold?: boolean;
}

/** The widest mask rendered (a longer text is cut at the right: callers show the end of long texts). */
export const MAX_TEXT_WIDTH = 4096;
/** Characters rendered at most (the last ones of a longer text). */
export const MAX_TEXT_CHARS = 300;

const FONT_FAMILY = "DejaVu Sans, Liberation Sans, Arial, sans-serif";

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * Rasterises `text` (its last {@link MAX_TEXT_CHARS} characters; control
 * characters dropped) in one line: height 1.4 × the font size, baseline at
 * 1.05 × the size, starting at x = 0.
 */
export async function renderText(text: string, style: TextStyle): Promise<TextMask> {
  // eslint-disable-next-line no-control-regex
  const shown = Array.from(text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ""))
    .slice(-MAX_TEXT_CHARS)
    .join("");
  const height = Math.ceil(style.size * 1.4);
  const width = Math.min(MAX_TEXT_WIDTH, Math.max(8, Math.ceil(Array.from(shown).length * style.size * 1.2) + 8));
  if (shown.trim() === "") return { text, width, height, alpha: new Uint8Array(width * height), inkWidth: 0 };
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
    `<text x="0" y="${Math.round(style.size * 1.05)}" font-family="${FONT_FAMILY}" font-size="${style.size}"` +
    `${style.bold === true ? ' font-weight="bold"' : ""} fill="#000" xml:space="preserve">${escapeXml(shown)}</text></svg>`;
  const { data, info } = await sharp(Buffer.from(svg), { density: 72 })
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const alpha = new Uint8Array(info.width * info.height);
  let inkWidth = 0;
  for (let i = 0; i < alpha.length; i++) {
    const a = data[i * info.channels + info.channels - 1] as number;
    alpha[i] = a;
    if (a !== 0) inkWidth = Math.max(inkWidth, (i % info.width) + 1);
  }
  return { text, width: info.width, height: info.height, alpha, inkWidth };
}

/**
 * Blends `mask` in `color` over the canvas with its (0, 0) at (x, y), only
 * inside `clip`: each channel becomes dst + (color − dst) × a / 255, rounded.
 */
export function blendText(canvas: Canvas, mask: TextMask, x: number, y: number, clip: Rect, color: number): void {
  const inMask = intersect(clip, { x, y, width: mask.width, height: mask.height });
  const area = inMask === null ? null : intersect(inMask, { x: 0, y: 0, width: canvas.width, height: canvas.height });
  if (area === null) return;
  const fr = (color >> 16) & 0xff;
  const fg = (color >> 8) & 0xff;
  const fb = color & 0xff;
  for (let row = area.y; row < area.y + area.height; row++) {
    for (let col = area.x; col < area.x + area.width; col++) {
      const a = mask.alpha[(row - y) * mask.width + (col - x)] as number;
      if (a === 0) continue;
      const at = row * canvas.width + col;
      const dst = canvas.pixels[at] as number;
      const r = (dst >> 16) & 0xff;
      const g = (dst >> 8) & 0xff;
      const b = dst & 0xff;
      canvas.pixels[at] =
        ((r + Math.round(((fr - r) * a) / 255)) << 16) |
        ((g + Math.round(((fg - g) * a) / 255)) << 8) |
        (b + Math.round(((fb - b) * a) / 255));
    }
  }
}

/**
 * Where a mask goes in `box`: at its left edge, or, when the text is wider
 * than the box, shifted left so that its end shows. Vertically centred.
 */
export function textOrigin(mask: TextMask, box: Rect): { x: number; y: number } {
  const x = mask.inkWidth > box.width ? box.x + box.width - mask.inkWidth : box.x;
  return { x, y: box.y + Math.floor((box.height - mask.height) / 2) };
}
