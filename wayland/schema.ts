/**
 * The shape of the interface tables that scripts/wayland-scanner.ts generates
 * from protocol XML, and the type-level vocabulary of the generated typings.
 *
 * The codec (wire.ts) walks these tables instead of carrying one hand-written
 * parser per message, so every message is bounds-checked by the same code.
 */
import type { Resource } from "./server.ts";
import type { Proxy } from "./client.ts";

/** The eight argument types of the Wayland wire format. */
export type ArgType = "int" | "uint" | "fixed" | "string" | "object" | "new_id" | "array" | "fd";

/** One argument of a request or event, as the XML declares it. */
export interface ArgSpec {
  readonly name: string;
  readonly type: ArgType;
  /** The interface of an object or new_id argument; absent for an untyped one. */
  readonly interface?: string;
  /** `allow-null="true"`: a string or object argument that may be null (0 on the wire). */
  readonly nullable?: boolean;
  /** The enum (possibly `other_interface.enum`) that constrains an int or uint argument. */
  readonly enum?: string;
}

/** One request or event. Its opcode is its index in the interface's list. */
export interface MessageSpec {
  readonly name: string;
  /** The interface version that brought this message (1 when the XML says nothing). */
  readonly since: number;
  /** `type="destructor"`: the object is gone once this request is sent. */
  readonly destructor?: boolean;
  readonly args: readonly ArgSpec[];
}

/** One interface: its highest version, requests and events by opcode, and enums. */
export interface InterfaceSpec {
  readonly name: string;
  readonly version: number;
  readonly requests: readonly MessageSpec[];
  readonly events: readonly MessageSpec[];
  /** Enum name → entry name → value. */
  readonly enums: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** Enums declared `bitfield="true"` (values combine with |). */
  readonly bitfields?: readonly string[];
  /** Enum name → entry name → the version that brought it, for entries newer than version 1. */
  readonly enumSince?: Readonly<Record<string, Readonly<Record<string, number>>>>;
}

/** Which end of a connection a typing describes: objects are Resources on the server and Proxies on the client. */
export type Side = "server" | "client";

/** The object type of interface `I` on side `S`: what an object or new_id argument decodes to. */
export type Ref<S extends Side, I extends string> = S extends "server" ? Resource<I> : Proxy<I>;

/** An untyped new_id (wl_registry.bind): interface name, version and the new object id travel together. */
export interface UntypedNewId {
  readonly interface: string;
  readonly version: number;
  readonly id: number;
}

import type { ClientRequests, Events, Requests } from "./protocols/all.generated.ts";

/** An argument tuple type, or never when `T` is not one (keeps generic rest parameters well-typed). */
export type Args<T> = T extends readonly unknown[] ? T : never;

/** The requests of interface `I` as a server receives them (untyped for an unknown interface). */
export type RequestsOf<I extends string> = I extends keyof Requests ? Requests[I] : Record<string, unknown[]>;

/** The events of interface `I` with objects as side `S` sees them. */
export type EventsOf<I extends string, S extends Side> = I extends keyof Events<S>
  ? Events<S>[I]
  : Record<string, unknown[]>;

/** The requests of interface `I` as a client sends them: arguments without the new_id, and what they create. */
export type ClientRequestsOf<I extends string> = I extends keyof ClientRequests
  ? ClientRequests[I]
  : Record<string, { args: unknown[]; creates: string }>;

/** Handlers for the requests of interface `I`, by name; each gets the decoded arguments. */
export type RequestHandlers<I extends string> = {
  [K in keyof RequestsOf<I>]?: (...args: Args<RequestsOf<I>[K]>) => void;
};
