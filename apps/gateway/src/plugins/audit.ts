import { Errors } from '@pipp/service-kit';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Schema, type Model } from 'mongoose';
import type { Config } from '../config.js';
import type { AuditRecord } from '../domain/audit.js';

const AuditRecordSchema = new Schema<AuditRecord>({
  _id: { type: String, required: true },
  at: { type: Date, required: true },
  requestId: { type: String, required: true },
  actor: {
    role: { type: String, required: true },
    sub: String,
    sid: String,
  },
  subjectId: String,
  service: { type: String, required: true },
  method: { type: String, required: true },
  route: { type: String, required: true },
  pathClass: { type: String, required: true },
  purpose: String,
  legalBasis: String,
  outcome: { type: String, required: true },
  status: { type: Number, required: true },
  code: String,
  durationMs: { type: Number, required: true },
}, { collection: 'audit_records', versionKey: false, strict: 'throw' });
// Plain and compound indexes only (no TTL: FerretDB; expiry is a sweep). Queries: by subject, by
// actor, by time, newest first, with _id as the tie-breaker of the cursor.
AuditRecordSchema.index({ at: -1, _id: -1 });
AuditRecordSchema.index({ subjectId: 1, at: -1, _id: -1 });
AuditRecordSchema.index({ 'actor.sub': 1, at: -1, _id: -1 });

/**
 * Append-only writer of audit records. Records are queued and written in batches (every
 * `flushMs` or `batchSize` records, one unordered insertMany), so that auditing every request costs
 * the request nothing; a failed batch stays queued and is retried. At most `maxBuffered` records wait:
 * beyond that `ensureCapacity` refuses (503) the requests that would need a record, so the gateway
 * fails closed rather than letting PI be reached without an audit trail. Closing flushes what is
 * queued. The crash window (a process killed outright) is at most `flushMs` of records.
 */
export class AuditWriter {
  private queue: AuditRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private lastError: string | undefined;

  constructor(
    private readonly write: (records: AuditRecord[]) => Promise<void>,
    private readonly opts: { flushMs: number; batchSize: number; maxBuffered: number; log: FastifyBaseLogger },
  ) {}

  /** Records waiting to be written. */
  get pending(): number {
    return this.queue.length;
  }

  /** The error of the last failed write, cleared by the next successful one. */
  get failure(): string | undefined {
    return this.lastError;
  }

  /** @throws PIPP_UNAVAILABLE (503, Retry-After 2) when the queue is full (the audit store is failing). */
  ensureCapacity(): void {
    if (this.queue.length >= this.opts.maxBuffered) {
      throw Errors.unavailable('The audit trail cannot be written; retry shortly', { retryAfter: 2 });
    }
  }

  /** Queues a record (written within flushMs). */
  append(record: AuditRecord): void {
    this.queue.push(record);
    if (this.queue.length >= this.opts.batchSize) void this.flush();
    else this.timer ??= setTimeout(() => { this.timer = undefined; void this.flush(); }, this.opts.flushMs);
  }

  /** Writes everything queued now (one batch at a time); resolves when the queue is empty or a write failed. */
  async flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    this.flushing = (async () => {
      while (this.queue.length) {
        const batch = this.queue.slice(0, this.opts.batchSize);
        try {
          await this.write(batch);
          this.queue.splice(0, batch.length);
          this.lastError = undefined;
        } catch (err) {
          this.lastError = (err as Error).message;
          this.opts.log.error({ err, pending: this.queue.length }, 'audit records could not be written; retrying');
          this.timer ??= setTimeout(() => { this.timer = undefined; void this.flush(); }, Math.max(this.opts.flushMs, 1000));
          return;
        }
      }
    })().finally(() => { this.flushing = undefined; });
    return this.flushing;
  }

  /** Stops the timer and writes what is queued (called on close). */
  async close(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
    if (this.queue.length) this.opts.log.error({ lost: this.queue.length }, 'audit records could not be written before shutdown');
  }
}

/** `app.audit`: the audit records model and writer. */
export interface AuditHandle {
  model: Model<AuditRecord>;
  writer: AuditWriter;
  /** Deletes the records past AUDIT_RETENTION_DAYS (run daily); resolves with how many. */
  sweep(): Promise<number>;
}

declare module 'fastify' {
  interface FastifyInstance {
    audit: AuditHandle;
  }
}

const DAY_MS = 24 * 3600 * 1000;

/**
 * The audit trail's storage: the gateway's own database (`pipp_gateway`, collection
 * `audit_records`), append-only (no route updates or deletes a record), and a daily sweep that
 * deletes records past AUDIT_RETENTION_DAYS (policy 5.1: kept only as long as necessary; the default
 * 180 days matches the minimum log retention of China's Cybersecurity Law art. 21).
 */
export const auditPlugin = fp(async function audit(app: FastifyInstance, opts: { config: Config }) {
  const { config } = opts;
  const model = app.mongo.model<AuditRecord>('AuditRecord', AuditRecordSchema);
  const writer = new AuditWriter(async (records) => {
    try {
      await model.collection.insertMany(records as never[], { ordered: false });
    } catch (err) {
      // A retried batch may hold records already written (same _id): those duplicates are fine.
      const writeErrors = (err as { writeErrors?: { code?: number }[] }).writeErrors;
      if (!writeErrors || writeErrors.some((e) => e.code !== 11000)) throw err;
    }
  }, { flushMs: config.AUDIT_FLUSH_MS, batchSize: config.AUDIT_BATCH_SIZE, maxBuffered: config.AUDIT_BUFFER_MAX, log: app.log.child({ component: 'audit' }) });
  const sweep = async () => {
    const { deletedCount } = await model.deleteMany({ at: { $lt: new Date(Date.now() - config.AUDIT_RETENTION_DAYS * DAY_MS) } });
    if (deletedCount) app.log.info({ deleted: deletedCount }, 'audit records past their retention period deleted');
    return deletedCount;
  };
  app.decorate('audit', { model, writer, sweep });

  let sweepTimer: NodeJS.Timeout | undefined;
  const sweepLogged = () => sweep().catch((err: unknown) => app.log.warn({ err }, 'audit retention sweep failed; retried at the next one'));
  app.addHook('onReady', async () => {
    void sweepLogged();
    sweepTimer = setInterval(() => void sweepLogged(), DAY_MS);
    sweepTimer.unref();
  });
  app.addHook('preClose', async () => {
    clearInterval(sweepTimer);
  });
  app.addHook('onClose', async () => {
    await writer.close();
  });
}, { name: 'gateway-audit' });
