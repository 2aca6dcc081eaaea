/**
 * Both sides of version negotiation and the daemon's screen description
 * (qubes-gui-protocol.md 1.3): the agent sends its version word; the daemon
 * answers with the negotiated word (from 1.4) and then `msg_xconf`.
 */
import {
  QUBES_GUID_PROTOCOL_VERSION,
  QUBES_GUID_PROTOCOL_VERSION_MAJOR,
  VERSION_BIDIRECTIONAL_NEGOTIATION,
  formatVersion,
  protocolVersion,
  versionMajor,
  versionMinor,
} from "./constants.ts";
import { ProtocolViolation, type Result } from "./errors.ts";
import type { XconfMessage } from "./messages.ts";

/** What the daemon does after reading the agent's version word. */
export interface Negotiation {
  /** The version both sides now speak. */
  version: number;
  /** Whether the daemon sends `version` back before xconf (negotiated ≥ 1.4). */
  sendVersionWord: boolean;
}

/**
 * The daemon's decision on an untrusted agent version word: same major →
 * `1 << 16 | min(agent minor, own minor)`; another major is refused with the
 * reason upstream shows ("agent outdated" / "daemon too old").
 */
export function negotiateVersion(
  untrustedAgentVersion: number,
  ownVersion: number = QUBES_GUID_PROTOCOL_VERSION,
): Result<Negotiation, ProtocolViolation> {
  const major = versionMajor(untrustedAgentVersion >>> 0);
  const ownMajor = versionMajor(ownVersion);
  if (major < ownMajor) {
    return {
      ok: false,
      error: new ProtocolViolation(
        "AGENT_OUTDATED",
        `agent protocol ${formatVersion(untrustedAgentVersion >>> 0)} is outdated: major ${major} < ${ownMajor}`,
      ),
    };
  }
  if (major > ownMajor) {
    return {
      ok: false,
      error: new ProtocolViolation(
        "DAEMON_TOO_OLD",
        `agent protocol ${formatVersion(untrustedAgentVersion >>> 0)} is newer than this daemon's major ${ownMajor}`,
      ),
    };
  }
  const version = protocolVersion(ownMajor, Math.min(versionMinor(untrustedAgentVersion), versionMinor(ownVersion)));
  return { ok: true, value: { version, sendVersionWord: version >= VERSION_BIDIRECTIONAL_NEGOTIATION } };
}

/**
 * The agent's check of the daemon's answer: major 1, minor ≥ 4, and not above
 * the agent's own version (the Linux agent exits with status 2 otherwise).
 */
export function acceptDaemonVersion(
  daemonVersion: number,
  ownVersion: number = QUBES_GUID_PROTOCOL_VERSION,
): Result<number, ProtocolViolation> {
  const version = daemonVersion >>> 0;
  if (versionMajor(version) !== QUBES_GUID_PROTOCOL_VERSION_MAJOR) {
    return {
      ok: false,
      error: new ProtocolViolation(
        "VERSION_MISMATCH",
        `daemon answered protocol ${formatVersion(version)}; major must be ${QUBES_GUID_PROTOCOL_VERSION_MAJOR}`,
      ),
    };
  }
  if (version < VERSION_BIDIRECTIONAL_NEGOTIATION || version > ownVersion) {
    return {
      ok: false,
      error: new ProtocolViolation(
        "VERSION_MISMATCH",
        `daemon answered protocol ${formatVersion(version)}; expected 1.4..${formatVersion(ownVersion)}`,
      ),
    };
  }
  return { ok: true, value: version };
}

/** A screen as the daemon knows it, in pixels. */
export interface ScreenSize {
  width: number;
  height: number;
  /** Bits per pixel depth; 24 on every Qubes setup. */
  depth?: number;
}

/**
 * Builds the xconf a daemon sends: width rounded up to a multiple of 8 and
 * memory in KiB (`w·h·4/1024 + 1`), so the agent's frame buffers fit.
 */
export function makeXconf(screen: ScreenSize): XconfMessage {
  const w = Math.ceil(screen.width / 8) * 8;
  const h = screen.height;
  return { type: "XCONF", w, h, depth: screen.depth ?? 24, mem: Math.floor((w * h * 4) / 1024) + 1 };
}
