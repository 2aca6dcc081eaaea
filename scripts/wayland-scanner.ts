/**
 * wayland-scanner: turns Wayland protocol XML into TypeScript interface
 * tables and typings under wayland/protocols/ (`*.generated.ts`).
 *
 * `node --import tsx scripts/wayland-scanner.ts` writes the files;
 * `--check` only compares them with what the installed XML gives and exits 1
 * on a difference. The generated code holds names, versions, `since`,
 * argument signatures and enum values: never the XML's prose.
 *
 * The XML subset of protocol files is small (elements, attributes, text,
 * comments, a prolog), so a purpose-built tokenizer reads it; text content
 * (descriptions, copyright) is skipped.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's wayland/protocols folder, where generated files live. */
export const outputDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "wayland", "protocols");

/** The core protocol XML, from libwayland-dev. */
export const coreXml = "/usr/share/wayland/wayland.xml";

/** Protocols taken from wayland-protocols, relative to its pkgdatadir. */
export const extraProtocols: readonly string[] = [
  "stable/xdg-shell/xdg-shell.xml",
  "stable/viewporter/viewporter.xml",
  "stable/presentation-time/presentation-time.xml",
  "unstable/xdg-decoration/xdg-decoration-unstable-v1.xml",
  "unstable/xdg-output/xdg-output-unstable-v1.xml",
  "staging/single-pixel-buffer/single-pixel-buffer-v1.xml",
  "unstable/linux-dmabuf/linux-dmabuf-unstable-v1.xml",
  "unstable/primary-selection/primary-selection-unstable-v1.xml",
  "staging/xdg-activation/xdg-activation-v1.xml",
  "staging/fractional-scale/fractional-scale-v1.xml",
  "unstable/relative-pointer/relative-pointer-unstable-v1.xml",
  "unstable/pointer-constraints/pointer-constraints-unstable-v1.xml",
  "unstable/idle-inhibit/idle-inhibit-unstable-v1.xml",
  "unstable/keyboard-shortcuts-inhibit/keyboard-shortcuts-inhibit-unstable-v1.xml",
  "unstable/text-input/text-input-unstable-v3.xml",
  "unstable/tablet/tablet-unstable-v2.xml",
];

/** One XML element of the protocol subset: name, attributes, child elements. */
export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
}

const entities: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

function unescape(value: string): string {
  return value.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (whole, name: string) => {
    if (name.startsWith("#x")) return String.fromCodePoint(parseInt(name.slice(2), 16));
    if (name.startsWith("#")) return String.fromCodePoint(parseInt(name.slice(1), 10));
    return entities[name] ?? whole;
  });
}

/** Parses the XML subset protocol files use; throws on anything malformed (the input is trusted build input). */
export function parseXml(text: string): XmlElement {
  const root: XmlElement = { name: "#document", attributes: {}, children: [] };
  const stack: XmlElement[] = [root];
  let at = 0;
  const fail = (why: string): never => {
    const line = text.slice(0, at).split("\n").length;
    throw new Error(`XML line ${line}: ${why}`);
  };
  while (at < text.length) {
    const open = text.indexOf("<", at);
    if (open < 0) break;
    at = open;
    if (text.startsWith("<!--", at)) {
      const end = text.indexOf("-->", at + 4);
      if (end < 0) fail("unterminated comment");
      at = end + 3;
    } else if (text.startsWith("<![CDATA[", at)) {
      const end = text.indexOf("]]>", at);
      if (end < 0) fail("unterminated CDATA");
      at = end + 3;
    } else if (text.startsWith("<?", at) || text.startsWith("<!", at)) {
      const end = text.indexOf(">", at);
      if (end < 0) fail("unterminated declaration");
      at = end + 1;
    } else if (text.startsWith("</", at)) {
      const end = text.indexOf(">", at);
      if (end < 0) fail("unterminated end tag");
      const name = text.slice(at + 2, end).trim();
      const top = stack.pop();
      if (top === undefined || top.name !== name) fail(`unexpected </${name}>`);
      at = end + 1;
    } else {
      const tag = /^<([A-Za-z_][\w.-]*)((?:\s+[\w.:-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/.exec(text.slice(at));
      if (tag === null) fail("malformed tag");
      const [whole, name, attributeText, selfClosing] = tag as unknown as [string, string, string, string];
      const element: XmlElement = { name, attributes: {}, children: [] };
      for (const attribute of attributeText.matchAll(/([\w.:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
        element.attributes[attribute[1] as string] = unescape(attribute[2] ?? attribute[3] ?? "");
      }
      (stack[stack.length - 1] as XmlElement).children.push(element);
      if (selfClosing !== "/") stack.push(element);
      at += whole.length;
    }
  }
  if (stack.length !== 1) fail(`unclosed <${(stack[stack.length - 1] as XmlElement).name}>`);
  return root;
}

/** A protocol as the generator sees it. */
interface Protocol {
  name: string;
  interfaces: Array<{
    name: string;
    version: number;
    requests: Message[];
    events: Message[];
    enums: Array<{ name: string; bitfield: boolean; entries: Array<{ name: string; value: number; since: number }> }>;
  }>;
}

interface Message {
  name: string;
  since: number;
  destructor: boolean;
  args: Array<{ name: string; type: string; interface?: string; nullable: boolean; enum?: string }>;
}

const argTypes = new Set(["int", "uint", "fixed", "string", "object", "new_id", "array", "fd"]);

function integer(value: string | undefined, what: string, fallback?: number): number {
  if (value === undefined) {
    if (fallback === undefined) throw new Error(`${what} is missing`);
    return fallback;
  }
  const parsed = Number(value.trim());
  if (!Number.isInteger(parsed)) throw new Error(`${what} is not an integer: ${value}`);
  return parsed;
}

function readProtocol(xml: string): Protocol {
  const root = parseXml(xml).children.find((child) => child.name === "protocol");
  if (root === undefined) throw new Error("no <protocol> element");
  const protocolName = root.attributes.name;
  if (protocolName === undefined) throw new Error("protocol without a name");
  const interfaces: Protocol["interfaces"] = [];
  for (const element of root.children) {
    if (element.name !== "interface") continue;
    const name = element.attributes.name;
    if (name === undefined) throw new Error("interface without a name");
    const readMessage = (message: XmlElement): Message => ({
      name: message.attributes.name ?? "",
      since: integer(message.attributes.since, `${name}.${message.attributes.name} since`, 1),
      destructor: message.attributes.type === "destructor",
      args: message.children
        .filter((child) => child.name === "arg")
        .map((arg) => {
          const type = arg.attributes.type ?? "";
          if (!argTypes.has(type)) throw new Error(`${name}.${message.attributes.name}: unknown type ${type}`);
          return {
            name: arg.attributes.name ?? "",
            type,
            ...(arg.attributes.interface !== undefined ? { interface: arg.attributes.interface } : {}),
            nullable: arg.attributes["allow-null"] === "true",
            ...(arg.attributes.enum !== undefined ? { enum: arg.attributes.enum } : {}),
          };
        }),
    });
    interfaces.push({
      name,
      version: integer(element.attributes.version, `${name} version`),
      requests: element.children.filter((child) => child.name === "request").map(readMessage),
      events: element.children.filter((child) => child.name === "event").map(readMessage),
      enums: element.children
        .filter((child) => child.name === "enum")
        .map((enumeration) => ({
          name: enumeration.attributes.name ?? "",
          bitfield: enumeration.attributes.bitfield === "true",
          entries: enumeration.children
            .filter((child) => child.name === "entry")
            .map((entry) => ({
              name: entry.attributes.name ?? "",
              value: integer(entry.attributes.value, `${name}.${enumeration.attributes.name} entry`),
              since: integer(entry.attributes.since, `${name}.${enumeration.attributes.name} entry since`, 1),
            })),
        })),
    });
  }
  return { name: protocolName, interfaces };
}

/** `xdg_decoration_unstable_v1` → `XdgDecorationUnstableV1`. */
export function pascalCase(name: string): string {
  return name
    .split(/[_-]/)
    .filter((part) => part.length > 0)
    .map((part) => part[0]?.toUpperCase() + part.slice(1))
    .join("");
}

/** The file a protocol's tables go to: `xdg_shell` → `xdg-shell.generated.ts`. */
export function fileNameOf(protocolName: string): string {
  return `${protocolName.replace(/_/g, "-")}.generated.ts`;
}

const reserved = new Set([
  "break case catch class const continue debugger default delete do else enum export extends false finally for function if",
  "import in instanceof new null return super switch this throw true try typeof var void while with yield let static",
  "implements interface package private protected public await",
]);
const reservedWords = new Set([...reserved].flatMap((line) => line.split(" ")));

function label(name: string): string {
  return reservedWords.has(name) ? `${name}_` : name;
}

function quote(value: string): string {
  return JSON.stringify(value);
}

function valueType(arg: Message["args"][number], side: string): string {
  switch (arg.type) {
    case "int":
    case "uint":
    case "fixed":
    case "fd":
      return "number";
    case "string":
      return arg.nullable ? "string | null" : "string";
    case "array":
      return "Uint8Array";
    case "object": {
      const ref = `Ref<${side}, ${quote(arg.interface ?? "")}>`.replace(`, ""`, ", string");
      return arg.nullable ? `${ref} | null` : ref;
    }
    case "new_id":
      return arg.interface === undefined ? "UntypedNewId" : `Ref<${side}, ${quote(arg.interface)}>`;
    default:
      throw new Error(`unknown type ${arg.type}`);
  }
}

function tuple(args: Message["args"], side: string): string {
  return `[${args.map((arg) => `${label(arg.name)}: ${valueType(arg, side)}`).join(", ")}]`;
}

/** Generates the TypeScript of one protocol file from its XML text. */
export function generate(xml: string, source: string): string {
  const protocol = readProtocol(xml);
  const prefix = pascalCase(protocol.name);
  const lines: string[] = [];
  lines.push(`// Generated by scripts/wayland-scanner.ts from ${source}. Do not edit.`);
  lines.push(`import type { InterfaceSpec, Ref, Side, UntypedNewId } from "../schema.ts";`);
  lines.push("");
  const messageLiteral = (message: Message): string => {
    const args = message.args.map((arg) => {
      const fields = [`name: ${quote(arg.name)}`, `type: ${quote(arg.type)}`];
      if (arg.interface !== undefined) fields.push(`interface: ${quote(arg.interface)}`);
      if (arg.nullable) fields.push("nullable: true");
      if (arg.enum !== undefined) fields.push(`enum: ${quote(arg.enum)}`);
      return `{ ${fields.join(", ")} }`;
    });
    const destructor = message.destructor ? ", destructor: true" : "";
    return `    { name: ${quote(message.name)}, since: ${message.since}${destructor}, args: [${args.join(", ")}] },`;
  };
  for (const iface of protocol.interfaces) {
    lines.push(`/** ${iface.name}, version ${iface.version}. */`);
    lines.push(`export const ${iface.name} = {`);
    lines.push(`  name: ${quote(iface.name)},`);
    lines.push(`  version: ${iface.version},`);
    lines.push(`  requests: [`);
    for (const message of iface.requests) lines.push(messageLiteral(message));
    lines.push(`  ],`);
    lines.push(`  events: [`);
    for (const message of iface.events) lines.push(messageLiteral(message));
    lines.push(`  ],`);
    lines.push(`  enums: {`);
    for (const enumeration of iface.enums) {
      const entries = enumeration.entries.map((entry) => `${quote(entry.name)}: ${entry.value}`);
      lines.push(`    ${quote(enumeration.name)}: { ${entries.join(", ")} },`);
    }
    lines.push(`  },`);
    const bitfields = iface.enums
      .filter((enumeration) => enumeration.bitfield)
      .map((enumeration) => quote(enumeration.name));
    if (bitfields.length > 0) lines.push(`  bitfields: [${bitfields.join(", ")}],`);
    const newer = iface.enums.filter((enumeration) => enumeration.entries.some((entry) => entry.since > 1));
    if (newer.length > 0) {
      lines.push(`  enumSince: {`);
      for (const enumeration of newer) {
        const entries = enumeration.entries
          .filter((entry) => entry.since > 1)
          .map((entry) => `${quote(entry.name)}: ${entry.since}`);
        lines.push(`    ${quote(enumeration.name)}: { ${entries.join(", ")} },`);
      }
      lines.push(`  },`);
    }
    lines.push(`} as const satisfies InterfaceSpec;`);
    lines.push("");
  }
  lines.push(`/** Every interface of the ${protocol.name} protocol. */`);
  lines.push(
    `export const ${prefix}Interfaces: readonly InterfaceSpec[] = [${protocol.interfaces.map((i) => i.name).join(", ")}];`,
  );
  lines.push("");
  lines.push(`/** Requests as a server receives them: argument tuples by interface and request name. */`);
  lines.push(`export interface ${prefix}Requests {`);
  for (const iface of protocol.interfaces) {
    lines.push(`  ${iface.name}: {`);
    for (const message of iface.requests) lines.push(`    ${message.name}: ${tuple(message.args, '"server"')};`);
    lines.push(`  };`);
  }
  lines.push(`}`);
  lines.push("");
  lines.push(`/** Requests as a client sends them: arguments without the new_id, and the interface it creates. */`);
  lines.push(`export interface ${prefix}ClientRequests {`);
  for (const iface of protocol.interfaces) {
    lines.push(`  ${iface.name}: {`);
    for (const message of iface.requests) {
      const created = message.args.find((arg) => arg.type === "new_id");
      const args = message.args.flatMap((arg) => {
        if (arg.type !== "new_id") return [`${label(arg.name)}: ${valueType(arg, '"client"')}`];
        return arg.interface === undefined ? ["interface_: string", "version: number"] : [];
      });
      const creates =
        created === undefined ? "never" : created.interface === undefined ? "string" : quote(created.interface);
      lines.push(`    ${message.name}: { args: [${args.join(", ")}]; creates: ${creates} };`);
    }
    lines.push(`  };`);
  }
  lines.push(`}`);
  lines.push("");
  lines.push(`/** Events: argument tuples by interface and event name, with objects as side S sees them. */`);
  lines.push(`export interface ${prefix}Events<S extends Side> {`);
  for (const iface of protocol.interfaces) {
    lines.push(`  ${iface.name}: {`);
    for (const message of iface.events) lines.push(`    ${message.name}: ${tuple(message.args, "S")};`);
    lines.push(`  };`);
  }
  lines.push(`}`);
  lines.push("");
  return lines.join("\n");
}

/** Generates the file that merges every protocol's tables and typings. */
export function generateIndex(protocolNames: readonly string[]): string {
  const lines: string[] = [];
  lines.push(`// Generated by scripts/wayland-scanner.ts. Do not edit.`);
  lines.push(`import type { InterfaceSpec, Side } from "../schema.ts";`);
  for (const name of protocolNames) {
    const prefix = pascalCase(name);
    const file = `./${fileNameOf(name)}`;
    lines.push(
      `import { ${prefix}Interfaces, type ${prefix}Requests, type ${prefix}ClientRequests, type ${prefix}Events } from ${quote(file)};`,
    );
  }
  for (const name of protocolNames) lines.push(`export * from ${quote(`./${fileNameOf(name)}`)};`);
  lines.push("");
  lines.push(`/** Every generated interface, by name. */`);
  lines.push(`export const allInterfaces: ReadonlyMap<string, InterfaceSpec> = new Map(`);
  lines.push(
    `  [${protocolNames.map((name) => `...${pascalCase(name)}Interfaces`).join(", ")}].map((spec) => [spec.name, spec]),`,
  );
  lines.push(`);`);
  lines.push("");
  const extend = (suffix: string, parameter: string): string =>
    protocolNames.map((name) => `${pascalCase(name)}${suffix}${parameter}`).join(", ");
  lines.push(`/** Requests of every protocol, as a server receives them. */`);
  lines.push(`export interface Requests extends ${extend("Requests", "")} {}`);
  lines.push(`/** Requests of every protocol, as a client sends them. */`);
  lines.push(`export interface ClientRequests extends ${extend("ClientRequests", "")} {}`);
  lines.push(`/** Events of every protocol. */`);
  lines.push(`export interface Events<S extends Side> extends ${extend("Events", "<S>")} {}`);
  lines.push(`/** The name of every generated interface. */`);
  lines.push(`export type InterfaceName = keyof Requests & string;`);
  lines.push("");
  return lines.join("\n");
}

/** Where wayland-protocols keeps its XML: pkg-config's answer, else Debian's folder. */
export function protocolsDir(): string {
  try {
    return execFileSync("pkg-config", ["--variable=pkgdatadir", "wayland-protocols"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return "/usr/share/wayland-protocols";
  }
}

/** Every generated file (name → content) from the installed XML; throws naming what is missing. */
export function generateAll(): Map<string, string> {
  if (!existsSync(coreXml)) throw new Error(`${coreXml} is missing: install libwayland-dev`);
  const dir = protocolsDir();
  const sources: Array<[string, string]> = [[coreXml, "wayland.xml"]];
  for (const relative of extraProtocols) sources.push([path.join(dir, relative), path.basename(relative)]);
  const files = new Map<string, string>();
  const names: string[] = [];
  for (const [file, label] of sources) {
    if (!existsSync(file)) throw new Error(`${file} is missing: install wayland-protocols`);
    const xml = readFileSync(file, "utf8");
    const name = readProtocol(xml).name;
    names.push(name);
    files.set(fileNameOf(name), generate(xml, label));
  }
  files.set("all.generated.ts", generateIndex(names));
  return files;
}

function main(): void {
  const check = process.argv.includes("--check");
  let stale = 0;
  for (const [name, content] of generateAll()) {
    const target = path.join(outputDir, name);
    if (check) {
      const current = existsSync(target) ? readFileSync(target, "utf8") : "";
      if (current !== content) {
        process.stderr.write(`${name} does not match the XML; run scripts/wayland-scanner.ts\n`);
        stale += 1;
      }
    } else {
      writeFileSync(target, content);
    }
  }
  process.exit(stale > 0 ? 1 : 0);
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
