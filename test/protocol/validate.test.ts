import { describe, expect, it } from "vitest";

import {
  SessionValidator,
  StreamDecoder,
  protocolVersion,
  vmRect,
  type Message,
  type TrustedMessage,
  type UntrustedMessage,
  type ValidationResult,
  type ValidatorConfig,
} from "../../protocol/index.ts";
import { bytes, fixedText } from "./bytes.ts";

const W = 0x400001;
const OTHER = 0x400002;
const screen = { width: 1920, height: 1080 };

function session(config: Partial<ValidatorConfig> = {}): SessionValidator {
  return new SessionValidator({ screen, ...config });
}

function create(fields: Partial<Extract<Message, { type: "CREATE" }>> = {}): UntrustedMessage {
  return {
    type: "CREATE",
    window: W,
    x: 10,
    y: 20,
    width: 300,
    height: 200,
    parent: 0x123,
    override_redirect: 0,
    ...fields,
  };
}

function configure(fields: Partial<Extract<Message, { type: "CONFIGURE" }>> = {}): UntrustedMessage {
  return { type: "CONFIGURE", window: W, x: 10, y: 20, width: 300, height: 200, override_redirect: 0, ...fields };
}

function map(fields: Partial<Extract<Message, { type: "MAP" }>> = {}): UntrustedMessage {
  return { type: "MAP", window: W, transient_for: 0, override_redirect: 0, ...fields };
}

function accepted(result: ValidationResult): TrustedMessage & Record<string, unknown> {
  if (!result.ok) throw new Error(`expected acceptance, got ${result.error.code}: ${result.error.message}`);
  return result.value as TrustedMessage & Record<string, unknown>;
}

function expectReaction(
  result: ValidationResult,
  code: string,
  reaction: "drop" | "end-session",
  suspicious?: boolean,
) {
  expect(result.ok).toBe(false);
  if (result.ok) return;
  expect(result.error.code).toBe(code);
  expect(result.error.reaction).toBe(reaction);
  if (suspicious !== undefined && result.error.reaction === "drop") expect(result.error.suspicious).toBe(suspicious);
}

function notices(result: ValidationResult): string[] {
  return result.ok ? result.notices.map((notice) => notice.code) : [];
}

/** A validator with window W created (and mapped when asked). */
function withWindow(config: Partial<ValidatorConfig> = {}, mapped = false, fields: Parameters<typeof create>[0] = {}) {
  const validator = session(config);
  accepted(validator.validate(create(fields)));
  if (mapped) accepted(validator.validate(map({ override_redirect: fields.override_redirect ?? 0 })));
  return validator;
}

describe("header rule: the window must exist", () => {
  const others: UntrustedMessage[] = [
    { type: "DESTROY", window: W },
    map(),
    { type: "UNMAP", window: W },
    configure(),
    { type: "SHMIMAGE", window: W, x: 0, y: 0, width: 1, height: 1 },
    { type: "WMNAME", window: W, data: new Uint8Array(128) },
    { type: "DOCK", window: W },
    {
      type: "WINDOW_HINTS",
      window: W,
      flags: 0,
      min_width: 0,
      min_height: 0,
      max_width: 0,
      max_height: 0,
      width_inc: 0,
      height_inc: 0,
      base_width: 0,
      base_height: 0,
    },
    { type: "WINDOW_FLAGS", window: W, flags_set: 0, flags_unset: 0 },
    { type: "WMCLASS", window: W, res_class: new Uint8Array(64), res_name: new Uint8Array(64) },
    { type: "WINDOW_DUMP", window: W, dump_type: 0, width: 1, height: 1, bpp: 32, grant_refs: Uint32Array.of(1) },
    { type: "CURSOR", window: W, cursor: 0 },
  ];
  for (const message of others) {
    it(`ends the session on ${message.type} for a window never created`, () => {
      expectReaction(session().validate(message), "UNKNOWN_WINDOW", "end-session");
    });
  }

  it("ends the session on a message for window 0xffffffff", () => {
    expectReaction(withWindow().validate({ type: "UNMAP", window: 0xffffffff }), "UNKNOWN_WINDOW", "end-session");
  });

  it("does not look up the window of CLIPBOARD_DATA", () => {
    const validator = session();
    validator.noteClipboardRequested();
    expect(accepted(validator.validate({ type: "CLIPBOARD_DATA", window: 0xdead, data: Uint8Array.of(65) })).type).toBe(
      "CLIPBOARD_DATA",
    );
  });

  it("ends the session on a daemon → agent message type", () => {
    expectReaction(
      withWindow().validate({ type: "KEYPRESS", window: W, event_type: 2, x: 0, y: 0, state: 0, keycode: 38 }),
      "UNKNOWN_TYPE",
      "end-session",
    );
  });

  it("ends the session on the obsolete MFNDUMP", () => {
    const mfndump: UntrustedMessage = {
      type: "MFNDUMP",
      window: W,
      shmid: 0,
      width: 1,
      height: 1,
      bpp: 24,
      off: 0,
      num_mfn: 1,
      domid: 0,
      mfns: Uint32Array.of(1),
    };
    expectReaction(withWindow().validate(mfndump), "MFNDUMP_REFUSED", "end-session");
  });
});

describe("CREATE", () => {
  it("accepts a plain window and ignores parent", () => {
    const value = accepted(session().validate(create()));
    expect(value).toEqual({
      type: "CREATE",
      window: W,
      rect: { x: 10, y: 20, width: 300, height: 200 },
      overrideRedirect: false,
    });
  });

  it("accepts window 0, the screen window", () => {
    expect(accepted(session().validate(create({ window: 0 }))).window).toBe(0);
  });

  it("ends the session on CREATE of an existing id", () => {
    expectReaction(withWindow().validate(create()), "DUPLICATE_WINDOW", "end-session");
  });

  for (const value of [0x80000000, 0xffffffff]) {
    it(`drops as suspicious a CREATE whose width is ${value}`, () => {
      expectReaction(session().validate(create({ width: value })), "CREATE_NEGATIVE_SIZE", "drop", true);
    });
    it(`drops as suspicious a CREATE whose height is ${value}`, () => {
      expectReaction(session().validate(create({ height: value })), "CREATE_NEGATIVE_SIZE", "drop", true);
    });
  }

  it("a dropped CREATE leaves no window behind", () => {
    const validator = session();
    validator.validate(create({ width: 0xffffffff }));
    expect(validator.window(W)).toBeUndefined();
  });

  for (const field of ["width", "height"] as const) {
    it(`ends the session on a CREATE whose ${field} is 0 (upstream's X error)`, () => {
      expectReaction(session().validate(create({ [field]: 0 })), "CREATE_ZERO_SIZE", "end-session");
    });
  }

  for (const [width, height, expected] of [
    [16385, 6145, { width: 16384, height: 6144 }],
    [0x7fffffff, 0x7fffffff, { width: 16384, height: 6144 }],
    [16384, 6144, { width: 16384, height: 6144 }],
  ] as const) {
    it(`clamps a CREATE of ${width}x${height} to ${expected.width}x${expected.height}`, () => {
      const result = session().validate(create({ width, height }));
      expect(accepted(result).rect).toMatchObject(expected);
    });
  }

  for (const [x, y, expected] of [
    [0x7fffffff, 0x7fffffff, { x: 16384, y: 6144 }],
    [-0x80000000, -0x80000000, { x: -16384, y: -6144 }],
    [-1, -1, { x: -1, y: -1 }],
    [16385, -6145, { x: 16384, y: -6144 }],
    [0, 0, { x: 0, y: 0 }],
  ] as const) {
    it(`clamps a CREATE at ${x},${y} to ${expected.x},${expected.y}`, () => {
      const result = session().validate(create({ x, y }));
      expect(accepted(result).rect).toMatchObject(expected);
      if (x !== expected.x) expect(notices(result)).toContain("POSITION_CLAMPED");
    });
  }

  for (const value of [2, 0x80000000, 0xffffffff]) {
    it(`normalises override_redirect ${value} to 1 with a notice`, () => {
      const result = session().validate(create({ override_redirect: value }));
      expect(accepted(result).overrideRedirect).toBe(true);
      expect(notices(result)).toContain("OR_NORMALISED");
    });
  }

  it("refuses override-redirect when the config disables it", () => {
    const result = session({ overrideRedirect: "disabled" }).validate(create({ override_redirect: 1 }));
    expect(accepted(result).overrideRedirect).toBe(false);
    expect(notices(result)).toContain("OR_DISABLED");
  });

  it("refuses override-redirect for a window over 90 % of the work area", () => {
    const result = session().validate(create({ x: 0, y: 0, width: 1920, height: 1000, override_redirect: 1 }));
    expect(accepted(result).overrideRedirect).toBe(false);
    expect(notices(result)).toContain("OR_TOO_LARGE");
  });

  it("refuses override-redirect for a window of exactly 90 % of the work area", () => {
    const result = session().validate(create({ x: 0, y: 0, width: 1920, height: 972, override_redirect: 1 }));
    expect(accepted(result).overrideRedirect).toBe(false);
    expect(notices(result)).toContain("OR_TOO_LARGE");
  });

  it("keeps override-redirect for a window one row under 90 % of the work area", () => {
    const result = session().validate(create({ x: 0, y: 0, width: 1920, height: 971, override_redirect: 1 }));
    expect(accepted(result).overrideRedirect).toBe(true);
  });

  it("keeps a large override-redirect window when protection is off", () => {
    const result = session({ overrideRedirectProtection: false }).validate(
      create({ x: 0, y: 0, width: 1920, height: 1080, override_redirect: 1 }),
    );
    expect(accepted(result).overrideRedirect).toBe(true);
  });

  it("moves an override-redirect window partly off screen fully on screen", () => {
    const result = session().validate(create({ x: -50, y: 1000, width: 300, height: 200, override_redirect: 1 }));
    expect(accepted(result).rect).toEqual({ x: 0, y: 880, width: 300, height: 200 });
    expect(notices(result)).toContain("OR_ON_SCREEN");
  });

  it("shrinks an override-redirect window wider than the work area", () => {
    const result = session().validate(create({ x: -100, y: 0, width: 4000, height: 100, override_redirect: 1 }));
    expect(accepted(result).rect).toEqual({ x: 0, y: 0, width: 1920, height: 100 });
  });

  it("leaves an override-redirect window entirely off screen where it is", () => {
    const result = session().validate(create({ x: 5000, y: 0, width: 100, height: 100, override_redirect: 1 }));
    expect(accepted(result).rect).toEqual({ x: 5000, y: 0, width: 100, height: 100 });
  });

  it("does not move a managed window", () => {
    expect(accepted(session().validate(create({ x: -50, y: -50 }))).rect).toMatchObject({ x: -50, y: -50 });
  });

  it("goes through the decoder: a CREATE of 2^31 x 200 built from bytes is suspicious", () => {
    const stream = bytes().header(130, W, 24).i32(0).i32(0).u32(0x80000000).u32(200).u32(0).u32(0).build();
    const [decoded] = new StreamDecoder({ from: "agent" }).push(stream);
    if (!decoded?.ok || decoded.value.type !== "CREATE") throw new Error("CREATE expected");
    expectReaction(session().validate(decoded.value), "CREATE_NEGATIVE_SIZE", "drop", true);
  });
});

describe("CONFIGURE", () => {
  for (const [width, height] of [
    [0, 200],
    [300, 0],
  ] as const) {
    it(`drops as suspicious a CONFIGURE of ${width}x${height}`, () => {
      expectReaction(withWindow().validate(configure({ width, height })), "CONFIGURE_ZERO_SIZE", "drop", true);
    });
  }

  for (const value of [0x80000000, 0xffffffff]) {
    it(`clamps a CONFIGURE width of ${value} to 16384`, () => {
      const result = withWindow().validate(configure({ width: value, height: value }));
      expect(accepted(result).rect).toMatchObject({ width: 16384, height: 6144 });
      expect(notices(result)).toContain("SIZE_CLAMPED");
    });
  }

  it("clamps CONFIGURE coordinates like CREATE", () => {
    const result = withWindow().validate(configure({ x: -0x80000000, y: 0x7fffffff }));
    expect(accepted(result).rect).toMatchObject({ x: -16384, y: 6144 });
  });

  it("ignores the agent's override_redirect field", () => {
    expect(accepted(withWindow().validate(configure({ override_redirect: 1 }))).overrideRedirect).toBe(false);
  });

  it("refuses a different CONFIGURE while the daemon's own is pending", () => {
    const validator = withWindow({}, true);
    validator.noteConfigureSent(W, vmRect(0, 0, 800, 600));
    expectReaction(
      validator.validate(configure({ x: 1, y: 0, width: 800, height: 600 })),
      "CONFIGURE_PENDING",
      "drop",
      false,
    );
  });

  it("an equal CONFIGURE acknowledges the pending one, then the agent may move again", () => {
    const validator = withWindow({}, true);
    validator.noteConfigureSent(W, vmRect(0, 0, 800, 600));
    expect(accepted(validator.validate(configure({ x: 0, y: 0, width: 800, height: 600 }))).acknowledgesDaemon).toBe(
      true,
    );
    expect(validator.window(W)?.pendingConfigure).toBeNull();
    expect(accepted(validator.validate(configure({ x: 5, y: 5 }))).acknowledgesDaemon).toBe(false);
  });

  it("never marks window 0 as pending", () => {
    const validator = session();
    accepted(validator.validate(create({ window: 0 })));
    validator.noteConfigureSent(0, vmRect(0, 0, 800, 600));
    expect(validator.window(0)?.pendingConfigure).toBeNull();
  });

  it("refuses a size change of a docked window", () => {
    const validator = withWindow();
    accepted(validator.validate({ type: "DOCK", window: W }));
    expectReaction(validator.validate(configure({ width: 301 })), "DOCKED_RESIZE", "drop", false);
    expect(accepted(validator.validate(configure({ x: 50 }))).rect).toMatchObject({ x: 50 });
  });

  it("revokes override-redirect of a mapped window that grows over 90 % (unmap, change, map)", () => {
    const validator = withWindow({}, true, { override_redirect: 1 });
    const result = validator.validate(configure({ x: 0, y: 0, width: 1920, height: 1080 }));
    expect(accepted(result)).toMatchObject({ overrideRedirect: false, overrideRedirectRevoked: true });
    expect(notices(result)).toContain("OR_TOO_LARGE");
    expect(validator.window(W)?.overrideRedirect).toBe(false);
  });

  it("forces an override-redirect window on screen when it moves", () => {
    const validator = withWindow({}, true, { override_redirect: 1 });
    expect(accepted(validator.validate(configure({ x: 1900, y: 1070 }))).rect).toEqual({
      x: 1620,
      y: 880,
      width: 300,
      height: 200,
    });
  });
});

describe("MAP", () => {
  it("ignores MAP of an already mapped window", () => {
    expectReaction(withWindow({}, true).validate(map()), "MAP_MAPPED", "drop", false);
  });

  it("ignores MAP when the daemon runs invisible", () => {
    expectReaction(withWindow({ invisible: true }).validate(map()), "MAP_INVISIBLE", "drop", false);
  });

  it("ignores MAP after the host mapped the window", () => {
    const validator = withWindow();
    validator.noteMappedByHost(W);
    expectReaction(validator.validate(map()), "MAP_MAPPED", "drop", false);
  });

  it("ignores MAP of a docked window", () => {
    const validator = withWindow();
    accepted(validator.validate({ type: "DOCK", window: W }));
    expectReaction(validator.validate(map()), "MAP_DOCKED", "drop", false);
  });

  it("honours transient_for naming an existing window", () => {
    const validator = withWindow();
    accepted(validator.validate(create({ window: OTHER })));
    expect(accepted(validator.validate(map({ transient_for: OTHER }))).transientFor).toBe(OTHER);
  });

  for (const value of [1, 0x80000000, 0xffffffff, W]) {
    it(`clears transient_for 0x${value.toString(16)} that names no other window`, () => {
      const result = withWindow().validate(map({ transient_for: value }));
      expect(accepted(result).transientFor).toBeNull();
      expect(notices(result)).toContain("TRANSIENT_UNKNOWN");
    });
  }

  it("vets override-redirect on MAP (disabled by config)", () => {
    const result = withWindow({ overrideRedirect: "disabled" }).validate(map({ override_redirect: 1 }));
    expect(accepted(result).overrideRedirect).toBe(false);
  });

  it("sets override-redirect on MAP of an unmapped window and forces it on screen", () => {
    const validator = withWindow({}, false, { x: -100 });
    const value = accepted(validator.validate(map({ override_redirect: 1 })));
    expect(value.overrideRedirect).toBe(true);
    expect(value.rect).toMatchObject({ x: 0 });
  });
});

describe("UNMAP and DESTROY", () => {
  it("ignores UNMAP of a docked window", () => {
    const validator = withWindow();
    accepted(validator.validate({ type: "DOCK", window: W }));
    expectReaction(validator.validate({ type: "UNMAP", window: W }), "UNMAP_DOCKED", "drop", false);
  });

  it("UNMAP detaches the image so SHMIMAGE is ignored until mapped again", () => {
    const validator = withWindow({}, true);
    accepted(validator.validate({ type: "UNMAP", window: W }));
    expect(validator.window(W)).toMatchObject({ mapped: false, image: null });
    expectReaction(
      validator.validate({ type: "SHMIMAGE", window: W, x: 0, y: 0, width: 1, height: 1 }),
      "SHMIMAGE_UNMAPPED",
      "drop",
    );
  });

  it("DESTROY forgets the window, clears transient_for references, and asks for the 1.5 ack", () => {
    const validator = withWindow();
    accepted(validator.validate(create({ window: OTHER })));
    accepted(validator.validate(map({ window: OTHER, transient_for: W })));
    expect(accepted(validator.validate({ type: "DESTROY", window: W })).sendAck).toBe(true);
    expect(validator.window(OTHER)?.transientFor).toBeNull();
    expectReaction(validator.validate({ type: "UNMAP", window: W }), "UNKNOWN_WINDOW", "end-session");
    expect(accepted(validator.validate(create())).type).toBe("CREATE");
  });

  it("does not ask for a DESTROY ack at 1.4", () => {
    const validator = withWindow({ version: protocolVersion(1, 4) });
    expect(accepted(validator.validate({ type: "DESTROY", window: W })).sendAck).toBe(false);
  });
});

describe("SHMIMAGE", () => {
  const shm = (x: number, y: number, width: number, height: number): UntrustedMessage => ({
    type: "SHMIMAGE",
    window: W,
    x,
    y,
    width,
    height,
  });

  it("ignores SHMIMAGE of an unmapped window", () => {
    expectReaction(withWindow().validate(shm(0, 0, 10, 10)), "SHMIMAGE_UNMAPPED", "drop", false);
  });

  it("accepts SHMIMAGE of a docked unmapped window", () => {
    const validator = withWindow();
    accepted(validator.validate({ type: "DOCK", window: W }));
    expect(accepted(validator.validate(shm(0, 0, 10, 10))).rect).toEqual({ x: 0, y: 0, width: 10, height: 10 });
  });

  for (const [x, y, width, height] of [
    [-1, 0, 10, 10],
    [0, -0x80000000, 10, 10],
    [0, 0, 0x80000000, 10],
    [0, 0, 10, 0xffffffff],
  ] as const) {
    it(`ignores SHMIMAGE with a negative value (${x},${y} ${width}x${height})`, () => {
      expectReaction(withWindow({}, true).validate(shm(x, y, width, height)), "SHMIMAGE_NEGATIVE", "drop", false);
    });
  }

  it("clips the rectangle to the last dump's image", () => {
    const validator = withWindow({}, true);
    accepted(
      validator.validate({
        type: "WINDOW_DUMP",
        window: W,
        dump_type: 0,
        width: 64,
        height: 48,
        bpp: 32,
        grant_refs: Uint32Array.of(1, 2, 3),
      }),
    );
    const result = validator.validate(shm(10, 10, 0x7fffffff, 0x7fffffff));
    expect(accepted(result).rect).toEqual({ x: 10, y: 10, width: 54, height: 38 });
    expect(notices(result)).toContain("SHMIMAGE_CLIPPED");
  });

  it("clips to the window without an image, and drops an empty result", () => {
    const validator = withWindow({}, true);
    expect(accepted(validator.validate(shm(0, 0, 1000, 1000))).rect).toEqual({ x: 0, y: 0, width: 300, height: 200 });
    expectReaction(validator.validate(shm(300, 0, 10, 10)), "SHMIMAGE_EMPTY", "drop", false);
    expectReaction(validator.validate(shm(0, 0, 0, 0)), "SHMIMAGE_EMPTY", "drop", false);
  });

  it("never paints over the 2-px frame of an override-redirect window", () => {
    const validator = withWindow({}, true, { override_redirect: 1 });
    expect(accepted(validator.validate(shm(0, 0, 300, 200))).rect).toEqual({ x: 2, y: 2, width: 296, height: 196 });
    expectReaction(validator.validate(shm(0, 0, 2, 200)), "SHMIMAGE_EMPTY", "drop");
  });

  it("keeps an override-redirect window's whole image when the daemon draws its frames outside", () => {
    const validator = withWindow({ frameInsideOverrideRedirect: false }, true, { override_redirect: 1 });
    expect(accepted(validator.validate(shm(0, 0, 300, 200))).rect).toEqual({ x: 0, y: 0, width: 300, height: 200 });
    expect(accepted(validator.validate(shm(0, 0, 2, 200))).rect).toEqual({ x: 0, y: 0, width: 2, height: 200 });
  });
});

describe("WMNAME", () => {
  const title = (data: Uint8Array, allowUtf8Titles = false) =>
    accepted(withWindow({ allowUtf8Titles }).validate({ type: "WMNAME", window: W, data })).title;
  const raw = (...values: number[]) => {
    const data = new Uint8Array(128);
    data.set(values);
    return data;
  };

  it("keeps printable ASCII", () => {
    expect(title(fixedText("xterm: ~/src", 128))).toBe("xterm: ~/src");
  });

  it("forces byte 127 to NUL", () => {
    expect(title(new Uint8Array(128).fill(0x61))).toBe("a".repeat(127));
  });

  it("replaces controls, DEL and every non-ASCII byte with _ when UTF-8 titles are off", () => {
    expect(title(raw(0x41, 0x0a, 0x1b, 0x7f, 0xc3, 0xbc, 0x42))).toBe("A_____B");
  });

  it("turns a trailing … into ... when UTF-8 titles are off", () => {
    expect(title(fixedText("Long title…", 128))).toBe("Long title...");
  });

  it("keeps a … inside a title as three _ when UTF-8 titles are off", () => {
    expect(title(fixedText("a…b", 128))).toBe("a___b");
  });

  it("keeps valid UTF-8 when UTF-8 titles are on", () => {
    expect(title(fixedText("Grüße — 日本 🦀…", 128), true)).toBe("Grüße — 日本 🦀…");
  });

  for (const [name, sequence] of [
    ["an overlong NUL", [0xc0, 0x80]],
    ["an overlong slash", [0xe0, 0x80, 0xaf]],
    ["a surrogate", [0xed, 0xa0, 0x80]],
    ["a code point above U+10FFFF", [0xf4, 0x90, 0x80, 0x80]],
    ["a C1 control (U+0085)", [0xc2, 0x85]],
    ["a lone continuation byte", [0x80]],
    ["a truncated sequence", [0xe2, 0x82]],
    ["0xff", [0xff]],
  ] as const) {
    it(`replaces ${name} byte by byte with _ when UTF-8 titles are on`, () => {
      expect(title(raw(0x41, ...sequence, 0x42), true)).toBe(`A${"_".repeat(sequence.length)}B`);
    });
  }

  it("replaces C0 controls even when UTF-8 titles are on", () => {
    expect(title(raw(0x41, 0x09, 0x42), true)).toBe("A_B");
  });
});

describe("WMCLASS", () => {
  const wmclass = (resClass: Uint8Array, resName: Uint8Array): UntrustedMessage => ({
    type: "WMCLASS",
    window: W,
    res_class: resClass,
    res_name: resName,
  });

  it("sanitises both fields to ASCII and forces byte 63 to NUL", () => {
    const name = new Uint8Array(64).fill(0x6e);
    const value = accepted(withWindow().validate(wmclass(fixedText("Füße\n", 64), name)));
    expect(value).toMatchObject({ resClass: "F____e_", resName: "n".repeat(63) });
  });

  it("ignores WMCLASS of a mapped window", () => {
    expectReaction(
      withWindow({}, true).validate(wmclass(fixedText("a", 64), fixedText("b", 64))),
      "WMCLASS_MAPPED",
      "drop",
      false,
    );
  });
});

describe("WINDOW_HINTS", () => {
  const hints = (fields: Partial<Extract<Message, { type: "WINDOW_HINTS" }>>): UntrustedMessage => ({
    type: "WINDOW_HINTS",
    window: W,
    flags: 0,
    min_width: 0,
    min_height: 0,
    max_width: 0,
    max_height: 0,
    width_inc: 0,
    height_inc: 0,
    base_width: 0,
    base_height: 0,
    ...fields,
  });
  const check = (fields: Parameters<typeof hints>[0]) => accepted(withWindow().validate(hints(fields)));

  it("passes min, max, inc, base and the position flags when in range", () => {
    expect(
      check({
        flags: 1 | 4 | 16 | 32 | 64 | 256,
        min_width: 16384,
        min_height: 6144,
        max_width: 16384,
        max_height: 6144,
        width_inc: 16383,
        height_inc: 6143,
        base_width: 0,
        base_height: 0,
      }),
    ).toMatchObject({
      flags: 1 | 4 | 16 | 32 | 64 | 256,
      min: { width: 16384, height: 6144 },
      max: { width: 16384, height: 6144 },
      inc: { width: 16383, height: 6143 },
      base: { width: 0, height: 0 },
    });
  });

  for (const [name, fields, part] of [
    ["min width 16385", { flags: 16, min_width: 16385, min_height: 1 }, "min"],
    ["min height 2^32-1", { flags: 16, min_width: 1, min_height: 0xffffffff }, "min"],
    ["max width 0", { flags: 32, max_width: 0, max_height: 100 }, "max"],
    ["max height 0", { flags: 32, max_width: 100, max_height: 0 }, "max"],
    ["max width 16385", { flags: 32, max_width: 16385, max_height: 100 }, "max"],
    ["max height 2^31", { flags: 32, max_width: 100, max_height: 0x80000000 }, "max"],
    ["width_inc 16384", { flags: 64, width_inc: 16384, height_inc: 1 }, "inc"],
    ["height_inc 6144", { flags: 64, width_inc: 1, height_inc: 6144 }, "inc"],
    ["base width 2^32-1", { flags: 256, base_width: 0xffffffff, base_height: 1 }, "base"],
    ["base height 6145", { flags: 256, base_width: 1, base_height: 6145 }, "base"],
  ] as const) {
    it(`refuses the ${part} hint with ${name} and clears its flag`, () => {
      const value = check(fields);
      expect(value[part]).toBeNull();
      expect(value.flags).toBe(0);
    });
  }

  it("drops USSize, PSize, PAspect, PWinGravity and unknown flags", () => {
    const value = check({ flags: 0xffffffff & ~(16 | 32 | 64 | 256) });
    expect(value.flags).toBe(1 | 4);
  });

  it("ignores the values of hints whose flag is not set", () => {
    expect(check({ flags: 0, min_width: 5, min_height: 5 }).min).toBeNull();
  });

  it("raises a max size below the min size to the min size (a host refuses max < min)", () => {
    const result = withWindow().validate(
      hints({ flags: 16 | 32, min_width: 109, min_height: 11, max_width: 108, max_height: 458 }),
    );
    expect(accepted(result)).toMatchObject({ min: { width: 109, height: 11 }, max: { width: 109, height: 458 } });
    expect(result.ok && result.notices.map((notice) => notice.code)).toEqual(["HINT_MAX_BELOW_MIN"]);
  });
});

describe("WINDOW_FLAGS", () => {
  const flags = (flagsSet: number, flagsUnset: number): UntrustedMessage => ({
    type: "WINDOW_FLAGS",
    window: W,
    flags_set: flagsSet,
    flags_unset: flagsUnset,
  });

  for (const [set, unset] of [
    [1, 1],
    [0xffffffff, 0xffffffff],
    [0x80000000, 0x80000000],
    [4 | 2, 2],
  ] as const) {
    it(`drops as suspicious flags_set 0x${set.toString(16)} with flags_unset 0x${unset.toString(16)}`, () => {
      expectReaction(withWindow().validate(flags(set, unset)), "FLAGS_CONFLICT", "drop", true);
    });
  }

  it("turns fullscreen into maximize when fullscreen is not allowed", () => {
    const result = withWindow().validate(flags(1, 0));
    expect(accepted(result).set).toEqual({
      fullscreen: false,
      maximize: true,
      demandsAttention: false,
      minimize: false,
    });
    expect(notices(result)).toContain("FULLSCREEN_AS_MAXIMIZE");
  });

  it("keeps fullscreen when allow_fullscreen is on", () => {
    const value = accepted(withWindow({ allowFullscreen: true }).validate(flags(1, 2)));
    expect(value.set).toMatchObject({ fullscreen: true, maximize: false });
    expect(value.unset).toMatchObject({ demandsAttention: true });
  });

  it("masks set to 1|2|4 and unset to 1|2: minimize cannot be unset", () => {
    const result = withWindow({ allowFullscreen: true }).validate(flags(0xfffffff8 | 4, 0));
    expect(accepted(result).set).toEqual({
      fullscreen: false,
      maximize: false,
      demandsAttention: false,
      minimize: true,
    });
    expect(notices(result)).toContain("FLAGS_MASKED");
    const unset = withWindow().validate(flags(0, 4));
    expect(accepted(unset).unset).toEqual({
      fullscreen: false,
      maximize: false,
      demandsAttention: false,
      minimize: false,
    });
  });
});

describe("DOCK", () => {
  it("refuses DOCK of a mapped window", () => {
    expectReaction(withWindow({}, true).validate({ type: "DOCK", window: W }), "DOCK_MAPPED", "drop", false);
  });

  it("clears override-redirect of a docked window", () => {
    const validator = withWindow({}, false, { override_redirect: 1 });
    const result = validator.validate({ type: "DOCK", window: W });
    expect(notices(result)).toContain("OR_DOCKED");
    expect(validator.window(W)).toMatchObject({ docked: true, overrideRedirect: false });
  });
});

describe("CURSOR", () => {
  const cursor = (value: number) => withWindow().validate({ type: "CURSOR", window: W, cursor: value });

  it("accepts 0 as the default cursor", () => {
    expect(accepted(cursor(0)).cursor).toEqual({ kind: "default" });
  });

  it("accepts 0x100 + an even glyph as that X font cursor", () => {
    expect(accepted(cursor(0x100 + 68)).cursor).toEqual({ kind: "x11", glyph: 68 });
    expect(accepted(cursor(0x100)).cursor).toEqual({ kind: "x11", glyph: 0 });
  });

  it("turns an odd glyph into no cursor", () => {
    expect(accepted(cursor(0x199)).cursor).toEqual({ kind: "none" });
  });

  for (const value of [1, 0xff, 0x19a, 0x80000000, 0xffffffff]) {
    it(`drops as suspicious CURSOR 0x${value.toString(16)}`, () => {
      expectReaction(cursor(value), "BAD_CURSOR", "drop", true);
    });
  }
});

describe("WINDOW_DUMP", () => {
  const dump = (fields: Partial<Extract<Message, { type: "WINDOW_DUMP" }>>): UntrustedMessage => ({
    type: "WINDOW_DUMP",
    window: W,
    dump_type: 0,
    width: 64,
    height: 48,
    bpp: 32,
    grant_refs: Uint32Array.of(1, 2, 3),
    ...fields,
  });

  it("accepts 64x48 in exactly 3 pages", () => {
    expect(accepted(withWindow().validate(dump({})))).toMatchObject({
      geometry: { kind: "image", width: 64, height: 48, pages: 3 },
      bpp: 32,
    });
  });

  it("accepts a 0x0 dump with no refs as no image", () => {
    const validator = withWindow();
    const value = accepted(validator.validate(dump({ width: 0, height: 0, grant_refs: new Uint32Array(0) })));
    expect(value).toMatchObject({ geometry: { kind: "empty" } });
    expect(validator.window(W)?.image).toBeNull();
  });

  it("accepts a dump of width 0 with refs as no image, ignoring its refs", () => {
    const result = withWindow().validate(dump({ width: 0, height: 48 }));
    const value = accepted(result) as { grantRefs: Uint32Array };
    expect(value.grantRefs).toHaveLength(0);
    expect(notices(result)).toContain("DUMP_EMPTY_REFS");
  });

  for (const value of [1, 0x80000000, 0xffffffff]) {
    it(`ends the session on dump type ${value}`, () => {
      expectReaction(withWindow().validate(dump({ dump_type: value })), "DUMP_BAD_TYPE", "end-session");
    });
  }

  for (const [width, height] of [
    [16385, 1],
    [1, 6145],
    [0xffffffff, 1],
    [0x80000000, 0x80000000],
  ] as const) {
    it(`ends the session on a dump of ${width}x${height}`, () => {
      expectReaction(withWindow().validate(dump({ width, height })), "DUMP_TOO_LARGE", "end-session");
    });
  }

  it("ends the session on a dump with one page too few", () => {
    expectReaction(
      withWindow().validate(dump({ grant_refs: Uint32Array.of(1, 2) })),
      "DUMP_TOO_FEW_PAGES",
      "end-session",
    );
  });

  it("accepts the largest dump, 16384x6144 in 98 304 pages", () => {
    const refs = new Uint32Array(98304);
    expect(accepted(withWindow().validate(dump({ width: 16384, height: 6144, grant_refs: refs })))).toMatchObject({
      geometry: { kind: "image", width: 16384 },
    });
    expectReaction(
      withWindow().validate(dump({ width: 16384, height: 6144, grant_refs: refs.subarray(1) })),
      "DUMP_TOO_FEW_PAGES",
      "end-session",
    );
  });
});

describe("CLIPBOARD_DATA", () => {
  const data = (length: number): UntrustedMessage => ({
    type: "CLIPBOARD_DATA",
    window: W,
    data: new Uint8Array(length),
  });
  const requested = (config: Partial<ValidatorConfig> = {}) => {
    const validator = session(config);
    validator.noteClipboardRequested();
    return validator;
  };

  it("discards data nobody asked for", () => {
    expectReaction(session().validate(data(5)), "CLIPBOARD_UNREQUESTED", "drop", false);
  });

  it("accepts requested data once, then discards a second answer", () => {
    const validator = requested();
    expect(accepted(validator.validate(data(5))).data).toHaveLength(5);
    expectReaction(validator.validate(data(5)), "CLIPBOARD_UNREQUESTED", "drop");
  });

  it("accepts an empty answer (clears the clipboard)", () => {
    expect(accepted(requested().validate(data(0))).data).toHaveLength(0);
  });

  it("accepts exactly the limit and discards limit + 1 as oversized", () => {
    expect(accepted(requested().validate(data(64000))).data).toHaveLength(64000);
    expectReaction(requested().validate(data(64001)), "CLIPBOARD_OVERSIZED", "drop", false);
  });

  it("treats 256 001 bytes as the 1.8 agent's 'too big' signal at the largest limit", () => {
    expect(accepted(requested({ maxClipboardSize: 256000 }).validate(data(256000))).data).toHaveLength(256000);
    expectReaction(requested({ maxClipboardSize: 256000 }).validate(data(256001)), "CLIPBOARD_OVERSIZED", "drop");
  });

  it("ends the session on 256 002 bytes", () => {
    expectReaction(requested().validate(data(256002)), "CLIPBOARD_TOO_BIG", "end-session");
  });

  it("ends the session on more than 65 000 bytes before 1.8", () => {
    const validator = requested({ version: protocolVersion(1, 7), maxClipboardSize: 256000 });
    expectReaction(validator.validate(data(65001)), "CLIPBOARD_TOO_BIG", "end-session");
  });

  for (const value of [0, 255, 256001, -1, 1.5]) {
    it(`refuses a configured limit of ${value}`, () => {
      expect(() => session({ maxClipboardSize: value })).toThrow(RangeError);
    });
  }
});

describe("counters", () => {
  it("counts drops, suspicious drops and clamps", () => {
    const validator = withWindow();
    validator.validate({ type: "CURSOR", window: W, cursor: 1 });
    validator.validate({ type: "UNMAP", window: W });
    validator.validate({ type: "SHMIMAGE", window: W, x: 0, y: 0, width: 1, height: 1 });
    validator.validate(configure({ x: 0x7fffffff }));
    expect(validator.counters).toEqual({ clamped: 1, dropped: 2, suspicious: 1 });
  });
});
