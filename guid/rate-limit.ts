/**
 * A token bucket: what a domain may spend per second, with a burst. guid's
 * load rules use it to pace what a domain can make the daemon do (messages
 * and bytes read, host windows created), so that a domain that floods is
 * slowed to the rate instead of taking the daemon's CPU or the host
 * compositor's from the other domains.
 */

/** A rate of `rate` units a second, `burst` of them at once; spending may overdraw (a debt paid back at the rate). */
export class RateLimit {
  /** Units a second. */
  readonly rate: number;
  /** Most units saved up. */
  readonly burst: number;
  #tokens: number;
  /** performance.now() of the last refill, ms. */
  #at: number;

  constructor(rate: number, burst: number, now = performance.now()) {
    if (!(rate > 0) || !(burst >= 1)) {
      throw new RangeError(`a rate limit needs rate > 0 and burst ≥ 1, got ${rate}, ${burst}`);
    }
    this.rate = rate;
    this.burst = burst;
    this.#tokens = burst;
    this.#at = now;
  }

  /** Whether a unit may be spent now: one is saved up (the bucket is not in debt). */
  available(now = performance.now()): boolean {
    this.#refill(now);
    return this.#tokens >= 1;
  }

  /** Spends `units`, even past what is left: the debt delays what comes next. */
  spend(units: number, now = performance.now()): void {
    this.#refill(now);
    this.#tokens -= units;
  }

  /** ms until a unit may be spent again (0 when it may be now). */
  waitMs(now = performance.now()): number {
    this.#refill(now);
    return this.#tokens >= 1 ? 0 : ((1 - this.#tokens) * 1000) / this.rate;
  }

  #refill(now: number): void {
    const elapsed = now - this.#at;
    if (elapsed <= 0) return;
    this.#at = now;
    this.#tokens = Math.min(this.burst, this.#tokens + (elapsed * this.rate) / 1000);
  }
}
