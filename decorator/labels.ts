/**
 * The Qubes label table (qubes-gui-protocol.md 4.5): each domain has a label,
 * and the label's colour is what the daemon paints around the domain's
 * windows. Also the parser of the colour argument of `qubes-guid -c`.
 */

/** The name of a Qubes label, as qubes-core-admin spells it. */
export type LabelName = "red" | "orange" | "yellow" | "green" | "gray" | "blue" | "purple" | "black";

/** One row of the label table: index (as in `-l` and `_QUBES_LABEL`), name, and colour as 0xRRGGBB. */
export interface Label {
  readonly index: number;
  readonly name: LabelName;
  /** 24-bit RGB, 0xRRGGBB (no alpha), as `_QUBES_LABEL_COLOR` carries it. */
  readonly color: number;
}

/**
 * The eight Qubes labels in index order (1..8), so that the daemon, the
 * config and the CLI agree with qubes-core-admin on which colour a label means.
 */
export const LABELS: readonly Label[] = Object.freeze(
  (
    [
      [1, "red", 0xcc0000],
      [2, "orange", 0xf57900],
      [3, "yellow", 0xedd400],
      [4, "green", 0x73d216],
      [5, "gray", 0x555555],
      [6, "blue", 0x3465a4],
      [7, "purple", 0x75507b],
      [8, "black", 0x000000],
    ] as const
  ).map(([index, name, color]) => Object.freeze({ index, name, color })),
);

/**
 * The label with this index, or undefined when there is none; lets `-l INDEX`
 * be checked against the table instead of trusted as a number.
 */
export function labelByIndex(index: number): Label | undefined {
  return LABELS.find((label) => label.index === index);
}

/**
 * The label with this name, case-insensitively ("Red" is red), or undefined;
 * the same lookup `-c NAME` and guid.conf use.
 */
export function labelByName(name: string): Label | undefined {
  const lower = name.toLowerCase();
  return LABELS.find((label) => label.name === lower);
}

const HEX_COLOR = /^(?:0[xX]|#)([0-9a-fA-F]{6})$/;

/**
 * Parses a colour as `qubes-guid -c` takes it: `0xRRGGBB`, `#RRGGBB` or a
 * label name, to 0xRRGGBB. Throws a RangeError naming the text otherwise,
 * because a wrong frame colour must stop the daemon rather than fall back to
 * a colour that belongs to another domain.
 */
export function parseColor(text: string): number {
  const hex = HEX_COLOR.exec(text);
  if (hex) return Number.parseInt(hex[1] as string, 16);
  const label = labelByName(text);
  if (label) return label.color;
  throw new RangeError(
    `invalid colour ${JSON.stringify(text)}: expected 0xRRGGBB, #RRGGBB or a label name (${LABELS.map((l) => l.name).join(", ")})`,
  );
}

/**
 * Formats 0xRRGGBB as `#rrggbb`, the form CSS and logs use, so that one
 * spelling of a colour appears everywhere outside the X properties. Throws a
 * RangeError when `rgb` is not an integer in 0..0xffffff (a programmer error).
 */
export function formatColor(rgb: number): string {
  if (!Number.isInteger(rgb) || rgb < 0 || rgb > 0xffffff) {
    throw new RangeError(`not a 24-bit RGB colour: ${rgb}`);
  }
  return `#${rgb.toString(16).padStart(6, "0")}`;
}
