import type { FastifyBaseLogger } from 'fastify';
import type { Bindings } from 'pino';

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
type PinoLike = FastifyBaseLogger & { levels?: { values: Record<string, number> } };
const DEFAULT_VALUES: Record<string, number> = { fatal: 60, error: 50, warn: 40, info: 30, debug: 20, trace: 10, silent: Infinity };

/**
 * A request logger created only when something is logged. The kit's pino logger redacts PI at any of
 * three levels, so creating a per-request child (which Fastify does for every request) costs about a
 * third of a trivial request's CPU; with this, a request that logs nothing at an enabled level (every
 * request at LOG_LEVEL warn, or on a route with `logLevel: 'warn'` such as consent's decisions) never
 * pays it. Same bindings, same output. Every service's `childLoggerFactory` (createFastify).
 */
class LazyRequestLogger {
  private instance: FastifyBaseLogger | undefined;
  private readonly threshold: number;

  constructor(private readonly parent: PinoLike, private readonly bindings: Record<string, unknown>, private readonly opts: Record<string, unknown>) {
    const values = parent.levels?.values ?? DEFAULT_VALUES;
    const level = (opts.level as string | undefined) ?? parent.level;
    this.threshold = values[level] ?? DEFAULT_VALUES[level] ?? 30;
  }

  private real(): FastifyBaseLogger {
    this.instance ??= this.parent.child(this.bindings, this.opts);
    return this.instance;
  }

  private write(level: Level, args: unknown[]) {
    const value = (this.parent.levels?.values ?? DEFAULT_VALUES)[level] ?? 0;
    if (value < this.threshold) return;
    (this.real()[level] as (...a: unknown[]) => void)(...args);
  }

  get level(): string {
    return this.instance?.level ?? ((this.opts.level as string | undefined) ?? this.parent.level);
  }

  set level(level: string) {
    this.real().level = level;
  }

  fatal(...args: unknown[]) { this.write('fatal', args); }
  error(...args: unknown[]) { this.write('error', args); }
  warn(...args: unknown[]) { this.write('warn', args); }
  info(...args: unknown[]) { this.write('info', args); }
  debug(...args: unknown[]) { this.write('debug', args); }
  trace(...args: unknown[]) { this.write('trace', args); }
  silent() { /* nothing */ }
  child(bindings: Record<string, unknown>, opts?: Record<string, unknown>) { return this.real().child(bindings, opts); }
}

/** Fastify `childLoggerFactory` returning a LazyRequestLogger. */
export function lazyChildLogger(logger: FastifyBaseLogger, bindings: Bindings, opts: object): FastifyBaseLogger {
  return new LazyRequestLogger(logger as PinoLike, bindings as Record<string, unknown>, opts as Record<string, unknown>) as unknown as FastifyBaseLogger;
}
