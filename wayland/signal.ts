/**
 * A typed list of listeners: how long-lived objects of wayland/ announce
 * lifecycle events (`events.destroy` and friends), in the wlroots manner.
 */
export class Signal<T> {
  /** Created on the first add: most objects' signals never get a listener. */
  private listeners: Array<(value: T) => void> | undefined;

  /** Adds a listener; returns a function that removes it. */
  add(listener: (value: T) => void): () => void {
    (this.listeners ??= []).push(listener);
    return () => this.remove(listener);
  }

  /** Removes a listener (no-op when absent). */
  remove(listener: (value: T) => void): void {
    const index = this.listeners?.indexOf(listener) ?? -1;
    if (index >= 0) this.listeners?.splice(index, 1);
  }

  /** Calls every listener present at the time of the call, in order. */
  emit(value: T): void {
    if (this.listeners === undefined || this.listeners.length === 0) return;
    for (const listener of [...this.listeners]) listener(value);
  }

  /** Number of listeners. */
  get size(): number {
    return this.listeners?.length ?? 0;
  }
}
