/**
 * xdg_popup: the popup's own state (its positioner and the rectangle placed
 * from it, kept inside the output as seen from the parent's place on the
 * screen, reactive repositioning when the parent moves, the grab) and its
 * requests (grab, reposition), configures, and popup_done when it is
 * dismissed.
 */
import { xdg_popup, xdg_wm_base, type Display, type Resource } from "../wayland/index.ts";
import type { Size } from "./api.ts";
import type { Rect } from "./geometry.ts";
import { positionPopup, type PositionerState } from "./positioner.ts";
import { ShellWindowImpl, type ShellContext } from "./shell-window.ts";
import type { Surface } from "./surface.ts";
import type { XdgSurfaceState } from "./xdg-surface.ts";

/** A complete positioner as get_popup and reposition take it. */
export interface PlacedPositioner {
  state: PositionerState;
  /** xdg_positioner.set_reactive: re-placed when the parent moves. */
  reactive: boolean;
}

/** Reads an xdg_positioner: a copy of its state, or null after an invalid_positioner error (see xdg-wm-base.ts). */
export type PositionerReader = (positioner: Resource<"xdg_positioner">) => PlacedPositioner | null;

/** What a popup reports for the toplevel-only parts of the contract. */
const NO_SIZE: Size = Object.freeze({ width: 0, height: 0 });

/** A popup window: {@link ShellWindowImpl} with the xdg_popup's state. */
export class PopupWindow extends ShellWindowImpl {
  readonly kind = "popup";
  readonly parent: ShellWindowImpl;
  readonly xdgPopup: Resource<"xdg_popup">;
  /** The positioner as the app last set it (get_popup or reposition). */
  positioner: PositionerState;
  /** Where the positioner places the popup, relative to the parent's window coordinates, inside the output. */
  popupRect: Rect;
  /** Re-placed when the parent moves (xdg_positioner.set_reactive). */
  reactive: boolean;
  /** The popup asked for a grab (xdg_popup.grab) and was not dismissed yet. */
  grabbed = false;

  /** popup_done was sent: the popup stays until the app destroys it. */
  private dismissed = false;
  /** placeOnScreen was called: the popup uses its own place rather than its parent's. */
  private placed = false;
  /** The serial configure() returned before the initial commit: the initial configure uses it. */
  private deferredSerial: number | null = null;

  constructor(
    id: number,
    surface: Surface,
    xdg: XdgSurfaceState,
    xdgPopup: Resource<"xdg_popup">,
    parent: ShellWindowImpl,
    positioner: PlacedPositioner,
    display: Display,
    context: ShellContext,
  ) {
    super(id, surface, xdg, display, context);
    this.xdgPopup = xdgPopup;
    this.parent = parent;
    this.positioner = positioner.state;
    this.reactive = positioner.reactive;
    this.popupRect = this.placeInOutput();
    parent.popups.add(this);
  }

  /** A popup has no title. */
  get title(): string {
    return "";
  }

  /** A popup has no app id. */
  get appId(): string {
    return "";
  }

  /** A popup has no size hints. */
  get minSize(): Size {
    return NO_SIZE;
  }

  /** A popup has no size hints. */
  get maxSize(): Size {
    return NO_SIZE;
  }

  override screenPosition(): { x: number; y: number } {
    if (this.placed) return this.position;
    const origin = this.parent.screenPosition();
    return { x: origin.x + this.popupRect.x, y: origin.y + this.popupRect.y };
  }

  override placeOnScreen(screenX: number, screenY: number): void {
    this.placed = true;
    super.placeOnScreen(screenX, screenY);
  }

  /** Re-sends the popup's position; the size and states are not the popup's to take. */
  configure(): number {
    if (this.destroyed) return 0;
    const serial = this.display.nextSerial();
    if (!this.xdg.initialCommitDone) this.deferredSerial = serial;
    else this.sendConfigure(serial);
    return serial;
  }

  close(): void {
    if (this.destroyed) return;
    this.dismiss();
  }

  /** Sends popup_done to the popup (and its child popups first), once; it stays until the app destroys it. */
  dismiss(): void {
    if (this.dismissed) return;
    for (const child of this.popups) child.dismiss();
    this.dismissed = true;
    this.grabbed = false;
    this.xdgPopup.send("popup_done");
    this.context.windowStateChanged(this);
  }

  /** xdg_popup.reposition: a new positioner, a repositioned event with the token, then configure. */
  reposition(placed: PlacedPositioner, token: number): void {
    this.positioner = placed.state;
    this.reactive = placed.reactive;
    this.popupRect = this.placeInOutput();
    this.xdgPopup.send("repositioned", token);
    if (this.xdg.initialCommitDone) this.sendConfigure(this.display.nextSerial());
    this.events.reposition.emit(this);
  }

  /** The parent (or an ancestor) moved on the screen: a reactive popup is placed again, then its own popups. */
  parentMoved(): void {
    if (this.reactive) {
      const before = this.popupRect;
      const after = this.placeInOutput();
      this.popupRect = after;
      if (
        before.x !== after.x ||
        before.y !== after.y ||
        before.width !== after.width ||
        before.height !== after.height
      ) {
        if (this.xdg.initialCommitDone) this.sendConfigure(this.display.nextSerial());
        this.events.reposition.emit(this);
      }
    }
    for (const child of this.popups) child.parentMoved();
  }

  /** Places the popup from its positioner, inside the output as seen from the parent. */
  private placeInOutput(): Rect {
    const origin = this.parent.screenPosition();
    const output = this.context.outputSize();
    return positionPopup(this.positioner, {
      x: -origin.x,
      y: -origin.y,
      width: output.width,
      height: output.height,
    });
  }

  private sendConfigure(serial: number): void {
    const rect = this.popupRect;
    this.xdgPopup.send("configure", rect.x, rect.y, rect.width, rect.height);
    this.xdg.sendConfigure(serial);
  }

  protected override sendInitialConfigure(): void {
    this.popupRect = this.placeInOutput();
    this.sendConfigure(this.deferredSerial ?? this.display.nextSerial());
    this.deferredSerial = null;
  }

  /** A popup has no double-buffered state of its own. */
  protected override applyRoleCommit(): boolean {
    return true;
  }

  protected override leaveParent(): void {
    this.parent.popups.delete(this);
  }
}

/** Implements the xdg_popup requests of `window` on `resource`; `wmBase` gets the errors xdg_wm_base defines. */
export function implementPopup(
  resource: Resource<"xdg_popup">,
  window: PopupWindow,
  wmBase: Resource<"xdg_wm_base">,
  readPositioner: PositionerReader,
): void {
  resource.data = window;
  resource.implement({
    destroy() {
      for (const child of window.popups) {
        if (!child.destroyed) {
          wmBase.postError(
            xdg_wm_base.enums.error.not_the_topmost_popup,
            "a popup was destroyed before its child popups",
          );
          return;
        }
      }
    },
    grab() {
      if (window.mapped) {
        resource.postError(xdg_popup.enums.error.invalid_grab, "grab after the popup was mapped");
        return;
      }
      window.grabbed = true;
    },
    reposition(positioner, token) {
      const placed = readPositioner(positioner);
      if (placed === null) return;
      window.reposition(placed, token);
    },
  });
  resource.events.destroy.add(() => window.destroy());
}
