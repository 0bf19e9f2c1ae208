/**
 * A circuit breaker per upstream, so that a service that is down or hanging costs callers nothing but
 * an immediate 503 with Retry-After instead of a wait for each request's timeout (issue: "an upstream
 * that is down gives 503 with Retry-After promptly, not a hang").
 *
 * closed → (threshold consecutive failures) → open for `openMs` → half-open: one trial request at a
 * time; its success closes the circuit, its failure opens it again. Time is injected (`now`, ms).
 * Small and pure on purpose: it is driven from reply-from's callbacks, which a promise-wrapping
 * breaker library would fit badly.
 */
export class CircuitBreaker {
  private failures = 0;
  private openUntil = 0;
  private trialInFlight = false;

  constructor(private readonly opts: { threshold: number; openMs: number; now?: () => number }) {}

  private now() {
    return (this.opts.now ?? Date.now)();
  }

  /** `closed`, `open` (refusing) or `half-open` (the open period passed; a trial may go). */
  get state(): 'closed' | 'open' | 'half-open' {
    if (this.failures < this.opts.threshold) return 'closed';
    return this.now() < this.openUntil ? 'open' : 'half-open';
  }

  /**
   * May a request go to the upstream now? Returns 0 when it may, else the seconds (≥ 1) to wait,
   * for Retry-After. In half-open state only one trial request is let through at a time.
   */
  acquire(): number {
    const state = this.state;
    if (state === 'closed') return 0;
    if (state === 'half-open' && !this.trialInFlight) {
      this.trialInFlight = true;
      return 0;
    }
    return Math.max(1, Math.ceil((Math.max(this.openUntil, this.now() + 1) - this.now()) / 1000));
  }

  /** The upstream answered (whatever the status): the circuit closes. */
  succeeded(): void {
    this.failures = 0;
    this.trialInFlight = false;
  }

  /** The upstream could not be reached or did not answer in time. */
  failed(): void {
    this.failures += 1;
    this.trialInFlight = false;
    if (this.failures >= this.opts.threshold) this.openUntil = this.now() + this.opts.openMs;
  }
}
