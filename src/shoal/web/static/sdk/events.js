/** A minimal event emitter: `on(type, listener)` returns a function that removes the listener. */
export class Emitter {
  #listeners = new Map();

  /**
   * Call `listener(payload)` on every `type` event until the returned function is called.
   * @returns {() => void}
   */
  on(type, listener) {
    if (!this.#listeners.has(type)) this.#listeners.set(type, new Set());
    this.#listeners.get(type).add(listener);
    return () => this.off(type, listener);
  }

  off(type, listener) {
    this.#listeners.get(type)?.delete(listener);
  }

  /** Call every listener of `type`. A listener that throws is reported and does not stop the others. */
  emit(type, payload) {
    const listeners = this.#listeners.get(type);
    if (!listeners) return;
    for (const listener of [...listeners]) {
      try {
        listener(payload);
      } catch (error) {
        if (typeof globalThis.reportError === 'function') globalThis.reportError(error);
        else console.error(error);
      }
    }
  }
}
