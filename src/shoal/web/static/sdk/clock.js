/**
 * Clock sync from ping/pong: estimates the server's clock so that tick times (server milliseconds since
 * the epoch) can be compared with local time.
 *
 * Each pong gives one sample: `rtt = received - sent` and `offset = server_time + rtt / 2 - received`.
 * The estimate uses the sample with the smallest round trip among the last few (as NTP does): the
 * shorter the round trip, the less room for asymmetric delay to bias the offset.
 */

/** Milliseconds since the epoch, monotonic within a page (unlike `Date.now()`, which can jump). */
export function localNow() {
  return performance.timeOrigin + performance.now();
}

export class ClockSync {
  /**
   * @param {{window?: number}} [options] window: how many recent samples to choose from (default 8).
   */
  constructor({ window = 8 } = {}) {
    this.window = window;
    /** @type {{rtt: number, offset: number}[]} */
    this.samples = [];
    /** Server clock minus local clock, in ms; 0 until seeded. */
    this.offset = 0;
    /** The latest round-trip time in ms, or null before the first pong. */
    this.rtt = null;
    /** True once at least one ping/pong sample was taken. */
    this.synced = false;
  }

  /**
   * A rough first estimate from a server timestamp received at `receivedAt` (e.g. `welcome.server_time`),
   * ignoring the one-way delay. Replaced by the first ping/pong sample.
   */
  seed(serverTime, receivedAt = localNow()) {
    if (!this.synced) this.offset = serverTime - receivedAt;
  }

  /** Record one ping/pong: `sentAt` and `receivedAt` are local ms, `serverTime` the pong's `server_time`. */
  addSample(sentAt, serverTime, receivedAt = localNow()) {
    const rtt = Math.max(0, receivedAt - sentAt);
    this.rtt = rtt;
    this.samples.push({ rtt, offset: serverTime + rtt / 2 - receivedAt });
    if (this.samples.length > this.window) this.samples.shift();
    let best = this.samples[0];
    for (const sample of this.samples) if (sample.rtt < best.rtt) best = sample;
    this.offset = best.offset;
    this.synced = true;
  }

  /** The estimated server time (ms since the epoch) at local time `at`. */
  serverNow(at = localNow()) {
    return at + this.offset;
  }
}
