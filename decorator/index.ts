/**
 * decorator/: how the daemon marks a domain's windows as that domain's: the
 * label colours, the geometry of the identity frame, and the title and class
 * prefixes. It sees only values that protocol/ validation has already turned
 * into trusted ones, and imports protocol/ types and nothing else, so that no
 * domain-controlled code path can change how identity is drawn.
 */
export { LABELS, formatColor, labelByIndex, labelByName, parseColor } from "./labels.ts";
export type { Label, LabelName } from "./labels.ts";
export {
  DEFAULT_BORDER_WIDTH,
  MAX_BORDER_WIDTH,
  contentPointFromDecoration,
  decorationRectFromContent,
  frameLayout,
  isOnFrame,
} from "./frame.ts";
export type { ContentPoint, DecorationRect, FrameLayout } from "./frame.ts";
export { MAX_VM_NAME_LENGTH, checkVmName, decorateClass, decorateTitle, isValidVmName } from "./titles.ts";
export type { VmName } from "./titles.ts";
