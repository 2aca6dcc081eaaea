/**
 * Protocol tracing on stderr, switched on by WAYLAND_DEBUG as with
 * libwayland programs (`1` or `client` for the client side, `1` or `server`
 * for the server side): one line per request and event, so our compositor
 * and our client can be read side by side with a real program's trace.
 */
import type { MessageSpec } from "./schema.ts";

/** Which side a trace line comes from. */
export type TraceSide = "client" | "server";

/** Whether WAYLAND_DEBUG asks for tracing on `side` (read once per connection, when it is created). */
export function traceEnabled(side: TraceSide): boolean {
  const value = process.env.WAYLAND_DEBUG;
  if (value === undefined) return false;
  return value === "1" || value.split(",").includes(side);
}

function formatArg(value: unknown): string {
  if (value === null) return "nil";
  if (typeof value === "string") return JSON.stringify(value);
  if (value instanceof Uint8Array) return `array[${value.byteLength}]`;
  if (typeof value === "object") {
    const object = value as { interface?: { name?: string } | string; id?: number; version?: number };
    const name = typeof object.interface === "string" ? object.interface : object.interface?.name;
    if (typeof object.id === "number") return `${name ?? "?"}#${object.id}`;
  }
  return String(value);
}

/**
 * Writes one trace line: the time in ms, the direction (`->` sent, `<-`
 * received), the object and the message with its arguments. Strings come
 * from the peer and are JSON-escaped, so a hostile one cannot forge lines.
 */
export function traceMessage(
  side: TraceSide,
  direction: "->" | "<-",
  interfaceName: string,
  objectId: number,
  message: MessageSpec,
  args: readonly unknown[],
): void {
  const time = (performance.now() % 1e6).toFixed(3).padStart(10);
  const rendered = args.map(formatArg).join(", ");
  process.stderr.write(`[${time}] ${side} ${direction} ${interfaceName}#${objectId}.${message.name}(${rendered})\n`);
}
