/**
 * wl_data_device_manager: data sources, data devices and offers, and the
 * selection (the clipboard) as the Qubes side reads and sets it through
 * {@link ClipboardControl}. The selection is offered to the client with
 * keyboard focus, as the protocol asks; drag and drop is not offered (a
 * start_drag is cancelled at once).
 */
import {
  closeFd,
  createPipe,
  readPipe,
  Signal,
  writePipe,
  wl_data_offer,
  wl_data_source,
  type Client,
  type Display,
  type Resource,
} from "../wayland/index.ts";
import type { ClipboardControl } from "./api.ts";

/** The text types the Qubes side reads and offers, best first. */
export const TEXT_MIME_TYPES = ["text/plain;charset=utf-8", "text/plain", "UTF8_STRING", "STRING", "TEXT"] as const;

/** The most MIME types one source may offer (a hostile app cannot grow the list without bound). */
const MAX_MIME_TYPES = 64;

/** A selection: a client's wl_data_source, or bytes the compositor owns. */
type Selection =
  | { kind: "client"; source: Resource<"wl_data_source">; mimeTypes: string[] }
  | { kind: "compositor"; data: Uint8Array; mimeTypes: readonly string[] };

/** The clipboard: devices per client, the current selection, and ClipboardControl. */
export class DataDevices implements ClipboardControl {
  readonly events = { change: new Signal<void>() };
  private readonly devices = new Map<Client, Set<Resource<"wl_data_device">>>();
  private selection: Selection | null = null;
  /** The client that has keyboard focus (selection offers go to it). */
  private focusClient: Client | null = null;
  private readonly readTimeoutMs: number;

  constructor(display: Display, options: { readTimeoutMs?: number } = {}) {
    this.readTimeoutMs = options.readTimeoutMs ?? 5000;
    display.createGlobal("wl_data_device_manager", 3, (manager) => {
      manager.implement({
        create_data_source: (source) => this.implementSource(source),
        get_data_device: (device) => this.implementDevice(device),
      });
    });
  }

  private implementSource(source: Resource<"wl_data_source">): void {
    const mimeTypes: string[] = [];
    source.data = mimeTypes;
    source.implement({
      destroy: () => undefined,
      offer: (mimeType) => {
        if (mimeTypes.length < MAX_MIME_TYPES && !mimeTypes.includes(mimeType)) mimeTypes.push(mimeType);
      },
      set_actions: (actions) => {
        if ((actions & ~7) !== 0) {
          source.postError(wl_data_source.enums.error.invalid_action_mask, `invalid actions 0x${actions.toString(16)}`);
        }
      },
    });
    source.events.destroy.add(() => {
      if (this.selection?.kind === "client" && this.selection.source === source) this.setSelection(null);
    });
  }

  private implementDevice(device: Resource<"wl_data_device">): void {
    const client = device.client;
    let set = this.devices.get(client);
    if (set === undefined) {
      set = new Set();
      this.devices.set(client, set);
    }
    const devices = set;
    devices.add(device);
    device.events.destroy.add(() => devices.delete(device));
    device.implement({
      release: () => undefined,
      start_drag: (source) => {
        if (source !== null) source.send("cancelled");
      },
      set_selection: (source) => {
        if (source === null) {
          this.setSelection(null);
          return;
        }
        this.setSelection({ kind: "client", source, mimeTypes: source.data as string[] });
      },
    });
    if (client === this.focusClient) this.offerTo(device);
  }

  /** Keyboard focus moves to `client` (its data devices get the current selection first), or to no client. */
  keyboardFocusClient(client: Client | null): void {
    this.focusClient = client;
    if (client === null) return;
    for (const device of this.devices.get(client) ?? []) this.offerTo(device);
  }

  /** A client is gone. */
  clientDestroyed(client: Client): void {
    this.devices.delete(client);
    if (this.focusClient === client) this.focusClient = null;
  }

  private setSelection(selection: Selection | null): void {
    const old = this.selection;
    if (old?.kind === "client" && (selection?.kind !== "client" || selection.source !== old.source)) {
      if (!old.source.destroyed) old.source.send("cancelled");
    }
    this.selection = selection;
    this.events.change.emit();
    if (this.focusClient !== null) for (const device of this.devices.get(this.focusClient) ?? []) this.offerTo(device);
  }

  /** Sends a fresh wl_data_offer for the selection (or a null selection) to one data device. */
  private offerTo(device: Resource<"wl_data_device">): void {
    const selection = this.selection;
    if (selection === null) {
      device.send("selection", null);
      return;
    }
    const offer = device.client.createResource("wl_data_offer", device.version);
    offer.implement({
      destroy: () => undefined,
      accept: () => undefined,
      finish: () => {
        offer.postError(wl_data_offer.enums.error.invalid_finish, "finish on a selection offer");
      },
      set_actions: () => undefined,
      receive: (mimeType, fd) => {
        if (this.selection !== selection) {
          closeFd(fd);
          return;
        }
        this.transfer(selection, mimeType, fd);
      },
    });
    device.send("data_offer", offer);
    for (const mimeType of selection.mimeTypes) offer.send("offer", mimeType);
    device.send("selection", offer);
  }

  /** Hands `fd` to the selection's owner to write `mimeType` into (owned: closed here or by the write). */
  private transfer(selection: Selection, mimeType: string, fd: number): void {
    if (selection.kind === "client") {
      if (!selection.source.destroyed) selection.source.send("send", mimeType, fd);
      closeFd(fd);
      return;
    }
    if (!selection.mimeTypes.includes(mimeType)) {
      closeFd(fd);
      return;
    }
    // A thread-pool write: a reader that never reads cannot block the compositor.
    void writePipe(fd, selection.data);
  }

  read(limit: number): Promise<{ data: Uint8Array; truncated: boolean } | null> {
    const selection = this.selection;
    if (selection === null) return Promise.resolve(null);
    const mimeType = TEXT_MIME_TYPES.find((type) => selection.mimeTypes.includes(type));
    if (mimeType === undefined) return Promise.resolve(null);
    const max = Math.max(0, Math.floor(limit));
    if (selection.kind === "compositor") {
      return Promise.resolve({ data: selection.data.slice(0, max), truncated: selection.data.length > max });
    }
    if (selection.source.destroyed) return Promise.resolve(null);
    const { readFd, writeFd } = createPipe();
    selection.source.send("send", mimeType, writeFd);
    closeFd(writeFd);
    return readPipe(readFd, max, this.readTimeoutMs);
  }

  set(data: Uint8Array): void {
    this.setSelection({ kind: "compositor", data: data.slice(), mimeTypes: TEXT_MIME_TYPES });
  }
}
