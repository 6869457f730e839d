/**
 * Reconnect delays: exponential backoff with jitter, so that a server restart is not met by every client
 * reconnecting in the same millisecond.
 */

export class Backoff {
  /**
   * Delay n (from 0) is `min(maxDelay, initialDelay * factor ** n)`, less a random part of up to `jitter`
   * of it: with the defaults 0.5-1 s, 1-2 s, 2-4 s, ... capped at 7.5-15 s.
   *
   * @param {{initialDelay?: number, maxDelay?: number, factor?: number, jitter?: number,
   *          random?: () => number}} [options]
   */
  constructor({ initialDelay = 1000, maxDelay = 15000, factor = 2, jitter = 0.5, random = Math.random } = {}) {
    if (!(initialDelay > 0 && maxDelay >= initialDelay && factor >= 1 && jitter >= 0 && jitter <= 1)) {
      throw new RangeError('backoff needs 0 < initialDelay <= maxDelay, factor >= 1 and 0 <= jitter <= 1');
    }
    Object.assign(this, { initialDelay, maxDelay, factor, jitter, random });
    /** Delays handed out since the last reset. */
    this.attempt = 0;
  }

  /** The next delay in ms; each call grows the base delay until `maxDelay`. */
  next() {
    const base = Math.min(this.maxDelay, this.initialDelay * this.factor ** this.attempt);
    this.attempt += 1;
    return base * (1 - this.jitter * this.random());
  }

  /** Start again from `initialDelay` (after a connection succeeded). */
  reset() {
    this.attempt = 0;
  }
}
