/** fast-check arbitraries for protocol messages, by schema (shared by the property tests and the fuzz script). */
import fc from "fast-check";

import {
  MESSAGE_NAMES,
  MESSAGE_SCHEMAS,
  maySend,
  protocolVersion,
  type Message,
  type MessageName,
  type Side,
} from "../../protocol/index.ts";

/** Every version word from 1.0 to 1.8. */
export const VERSIONS = Array.from({ length: 9 }, (_, minor) => protocolVersion(1, minor));

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const i32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });

/** A message of `name` with any field values, sendable at `version` (clipboard within the version's limit). */
export function messageOf(name: MessageName, version: number): fc.Arbitrary<Message> {
  const schema = MESSAGE_SCHEMAS[name];
  const record: Record<string, fc.Arbitrary<unknown>> = { window: u32 };
  for (const field of schema.fields) {
    record[field.name] =
      field.kind === "u32"
        ? u32
        : field.kind === "i32"
          ? i32
          : fc.uint8Array({ minLength: field.size, maxLength: field.size });
  }
  if (schema.tail !== null) {
    record[schema.tail.name] =
      schema.tail.kind === "u8"
        ? fc.uint8Array({ maxLength: 300 })
        : fc.array(u32, { maxLength: 40 }).map((list) => Uint32Array.from(list));
  }
  return fc.record(record).map((fields) => {
    const message = { type: name, ...fields } as unknown as Message;
    if (message.type === "CLIPBOARD_DATA" && version < protocolVersion(1, 2)) message.window = message.data.length;
    return message;
  });
}

/** A message `side` may send at `version` (obsolete ones included only when asked). */
export function sendable(side: Side, version: number, obsolete = false): fc.Arbitrary<Message> {
  const names = MESSAGE_NAMES.filter(
    (name) => maySend(side, name, version) && (obsolete || !MESSAGE_SCHEMAS[name].obsolete),
  );
  return fc.constantFrom(...names).chain((name) => messageOf(name, version));
}

/** A side, a version and a list of messages that side sends at that version. */
export const conversation = fc
  .tuple(fc.constantFrom<Side>("agent", "daemon"), fc.constantFrom(...VERSIONS))
  .chain(([side, version]) =>
    fc.record({
      side: fc.constant(side),
      version: fc.constant(version),
      messages: fc.array(sendable(side, version, true), { maxLength: 20 }),
    }),
  );
