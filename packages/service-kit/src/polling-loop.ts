/**
 * A background worker: runs `pass` every `intervalMs` and whenever `kick()` asks, never two passes at
 * once (a kick during a pass runs one more pass right after it). A failed pass is logged at warn and
 * tried again at the next tick. `stop()` ends the ticks and waits for the pass in progress.
 * Used by the outbox relay, incident's notice dispatcher and data-sharing's deletion notices.
 */
export class PollingLoop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private halted = true;

  constructor(private readonly opts: {
    /** Time between ticks (ms). */
    intervalMs: number;
    /** One pass of work; should return once nothing is left (or `stopped` turns true). */
    pass: () => Promise<void>;
    log: { warn(obj: object, msg: string): void };
    /** What a failed pass is called in the log, e.g. 'outbox relay pass'. */
    what: string;
    /** Wraps the start of each run of passes (e.g. to leave the caller's async context). */
    detach?: (run: () => Promise<void>) => Promise<void>;
  }) {}

  /** True once stopped (passes check it to end early). */
  get stopped(): boolean {
    return this.halted;
  }

  /** Runs a pass now, or one more after the pass in progress. */
  kick(): void {
    if (this.halted) return;
    if (this.running) { this.again = true; return; }
    const run = () => this.runPasses();
    this.running = (this.opts.detach ? this.opts.detach(run) : run()).finally(() => { this.running = undefined; });
  }

  start(): void {
    this.halted = false;
    const tick = () => {
      this.kick();
      this.timer = setTimeout(tick, this.opts.intervalMs);
      this.timer.unref();
    };
    tick();
  }

  /** Stops ticking and waits for the pass in progress to finish. */
  async stop(): Promise<void> {
    this.halted = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** Resolves when the pass in progress (if any) has finished. */
  async idle(): Promise<void> {
    await this.running;
  }

  private async runPasses(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.opts.pass();
      } catch (err) {
        this.opts.log.warn({ err }, `${this.opts.what} failed; will retry`);
        return;
      }
    } while (this.again && !this.halted);
  }
}
