import type { DataCategory } from '@pipp/contracts';
import { KeyedLock, type OutboxEntry } from '@pipp/service-kit';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { randomUUID } from 'node:crypto';
import { fetchCatalogue } from '@pipp/consent-client';
import type { Config } from '../config.js';
import { effectiveRule } from '../domain/policies.js';
import { noticeAudiences, shutdownNotice, shutdownScope } from '../domain/shutdown.js';
import { RetentionErrors } from '../errors.js';
import type { Actor, ShutdownDoc } from './models.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Business shutdowns (see ShutdownService). */
    shutdowns: ShutdownService;
  }
}

/** How far ahead a shutdown may be announced (days): a date years away is a typo, not a plan. */
const MAX_NOTICE_DAYS = 366;

/** Erasure requests a shutdown opens per step, before it stores its progress. */
const OPEN_BATCH = 100;

export interface ShutdownInput {
  functionId: string;
  title: string;
  effectiveAt?: Date | undefined;
  action: 'erase' | 'anonymize';
  /** The categories the function collected; default all the catalogue lists for it. */
  categories?: DataCategory[] | undefined;
  /** Subjects known to be affected: notified one by one and erased per subject through the saga. */
  affectedSubjects?: string[] | undefined;
}

/**
 * Business shutdown (policy 2.4.2(5)): an operator closes a function or product. One write records it
 * with its announcements in the outbox: `privacy.function.shutdown` (every service refuses new data
 * for the function at once, consent denies decisions for it) and `privacy.notification.requested`
 * (kind business-shutdown: the affected subjects one by one, or every subject, which incident turns
 * into an announcement). Then its data is erased or anonymized through the saga: a shutdown sweep
 * (rules with period 0 over the function's categories, tracked per participant) and, for known
 * affected subjects, one erasure request each (origin business-shutdown, ground 2.4.2(5)). The
 * shutdown is `completed` when the sweep and those requests are. The function must be an active one
 * of consent's catalogue, and the categories another function still processes are kept (see shutdownScope).
 */
export class ShutdownService {
  private readonly log: FastifyBaseLogger;
  /** Shutdowns this process is moving on now (at most one run each). */
  private readonly running = new Map<string, Promise<void>>();
  private readonly creating = new KeyedLock();
  private stopping = false;

  constructor(private readonly app: FastifyInstance, private readonly config: Pick<Config, 'CONSENT_URL'>) {
    this.log = app.log.child({ component: 'shutdown' });
  }

  /**
   * @throws PIPP_FUNCTION_UNKNOWN (404, 2.4.2(5)) when consent's catalogue has no active function by that id.
   * @throws PIPP_SHUTDOWN_INVALID (422, 2.4.2(5)) when a category is not one the function collects.
   * @throws PIPP_FUNCTION_ALREADY_SHUT_DOWN (409, clause 2.4.2(5)) when the function is already closed.
   * @throws PIPP_BAD_TIME (400) when effectiveAt lies more than a minute in the past, or more than MAX_NOTICE_DAYS ahead.
   * @throws PIPP_UNAVAILABLE (503) when the consent service cannot say (nothing is shut down then).
   */
  async create(input: ShutdownInput, by: Actor, now = new Date()): Promise<ShutdownDoc> {
    // One at a time, each seeing the shutdowns before it: two functions sharing a category, closed
    // together, had each kept it for the other, so neither erased it.
    return this.creating.run('create', () => this.createNow(input, by, now));
  }

  private async createNow(input: ShutdownInput, by: Actor, now: Date): Promise<ShutdownDoc> {
    const effectiveAt = input.effectiveAt ?? now;
    if (effectiveAt.getTime() < now.getTime() - 60_000) throw RetentionErrors.badTime('effectiveAt cannot lie in the past: collection stops from now on');
    if (effectiveAt.getTime() > now.getTime() + MAX_NOTICE_DAYS * 86_400_000) {
      throw RetentionErrors.badTime(`A shutdown is announced at most ${MAX_NOTICE_DAYS} days ahead: effectiveAt ${effectiveAt.toISOString()} is later`, { clause: '2.4.2(5)' });
    }
    const before = await this.app.store.shutdowns.find({}, { functionId: 1, effectiveAt: 1 }).lean();
    const existing = before.find((s) => s.functionId === input.functionId);
    if (existing) throw RetentionErrors.alreadyShutDown(`${input.functionId} was shut down on ${existing.effectiveAt.toISOString()} (${existing._id})`, { clause: '2.4.2(5)' });
    const closed = new Set(before.map((s) => s.functionId));
    const scope = shutdownScope(input, await fetchCatalogue(this.config.CONSENT_URL), closed);
    if (!scope.ok) {
      if (scope.problem === 'unknown-function') throw RetentionErrors.functionUnknown(scope.message, { clause: '2.4.2(5)' });
      throw RetentionErrors.shutdownInvalid(scope.message, { clause: '2.4.2(5)', details: [{ path: '/body/categories', message: scope.message }] });
    }
    const { categories, erasedCategories, keptCategories } = scope;
    const id = `sd-${randomUUID()}`;
    const affected = [...new Set(input.affectedSubjects ?? [])];
    const audiences = noticeAudiences(affected);
    const notice = shutdownNotice({ title: input.title, effectiveAt, action: input.action, categories: erasedCategories, kept: keptCategories.map((k) => k.category) });
    const notificationIds = audiences.map((_, i) => `${id}-notice-${i + 1}`);
    const entries: OutboxEntry[] = [
      this.app.outbox.entry('privacy.function.shutdown', {
        correlationId: id,
        payload: { shutdownId: id, functionId: input.functionId, title: input.title, effectiveAt: effectiveAt.toISOString(), action: input.action, categories },
      }),
      ...audiences.map((audience, i) => this.app.outbox.entry('privacy.notification.requested', {
        correlationId: id,
        payload: {
          notificationId: notificationIds[i]!, kind: 'business-shutdown', requestedBy: 'retention', audience,
          title: notice.title, body: notice.body, clause: '2.4.2(5)',
          elements: { functionId: input.functionId, effectiveAt: effectiveAt.toISOString(), action: input.action, dataHandling: notice.dataHandling },
        },
      })),
    ];
    const doc: ShutdownDoc = {
      _id: id, functionId: input.functionId, title: input.title, effectiveAt, action: input.action, categories, erasedCategories, keptCategories,
      notice: { mode: affected.length ? 'individual' : 'announcement', notificationIds }, affectedSubjects: affected,
      status: 'collection-stopped', sweepId: `sw-${id}`, createdAt: now, createdBy: by,
    };
    try {
      await this.app.outbox.insert(this.app.store.shutdowns, doc as unknown as Record<string, unknown>, entries);
    } catch (err) {
      if ((err as { code?: number }).code === 11000) throw RetentionErrors.alreadyShutDown(`${input.functionId} is already shut down`, { clause: '2.4.2(5)' });
      throw err;
    }
    await this.app.audit({ actor: by, action: 'function.shutdown', target: { type: 'function', id: input.functionId }, clause: '2.4.2(5)', details: { shutdownId: id, action: input.action, categories, erasedCategories, keptCategories, affectedSubjects: affected.length } });
    this.log.warn({ shutdownId: id, functionId: input.functionId, action: input.action, erasedCategories, keptCategories, notice: doc.notice.mode }, 'function shut down: collection stopped, subjects notified, erasure under way');
    // The sweep and the per-subject erasures start in the background: thousands of affected subjects
    // took minutes to open, and the caller got a 504 for a shutdown that was carried out.
    this.kick(id, now);
    return doc;
  }

  /** Moves a shutdown on in the background, unless this process is already doing so (or stopping). */
  private kick(id: string, now: Date): void {
    if (this.running.has(id) || this.stopping) return;
    const run = this.advance(id, now)
      .catch((err: unknown) => this.log.warn({ err, shutdownId: id }, 'shutdown step failed; the scheduler tries again'))
      .finally(() => this.running.delete(id));
    this.running.set(id, run);
  }

  /** Moves a shutdown on: starts its sweep and per-subject erasures (idempotent ids), then completes it. */
  private async advance(id: string, now: Date): Promise<void> {
    await this.app.outbox.withDocument(this.app.store.shutdowns, id, async () => {
      const doc = await this.app.store.shutdowns.findById(id).lean();
      if (doc) await this.advanceLocked(doc, now);
    });
  }

  private async advanceLocked(doc: ShutdownDoc, now: Date): Promise<void> {
    if (doc.status === 'collection-stopped') {
      // Announced ahead: the function collects until then, so its data is erased from then on (an
      // erasure started at once left what it collected meanwhile behind). The scheduler's tick comes back.
      if (doc.effectiveAt.getTime() > now.getTime()) return;
      // Without categories to erase the sweep still runs: a participant that knows which data was
      // collected for the function erases that. Per-subject erasures only with categories (never an account).
      const categories = doc.erasedCategories;
      const rules = await this.app.policies.rules();
      const shutdownRules = categories.map((category) => {
        const base = effectiveRule(rules, 'retention', category) ?? rules.find((r) => r.category === category);
        return { category, periodDays: 0, action: doc.action, criterion: base?.criterion ?? '5.2.1', startsFrom: 'collection' as const };
      });
      await this.app.sweeps.start({ id: doc.sweepId, kind: 'shutdown', startedBy: doc.createdBy, rules: shutdownRules, shutdown: { shutdownId: doc._id, functionId: doc.functionId } }, now);
      // In batches, with the progress stored: a restart goes on from there (the request ids are idempotent too).
      const subjects = categories.length ? doc.affectedSubjects : [];
      for (let opened = doc.erasuresOpened ?? 0; opened < subjects.length;) {
        if (this.stopping) return;
        const batch = subjects.slice(opened, opened + OPEN_BATCH);
        for (const subjectId of batch) {
          await this.app.erasures.open({
            id: `${doc._id}-${subjectId}`.slice(0, 128), subjectId,
            scope: { kind: 'categories', categories },
            ground: '2.4.2(5)', origin: 'business-shutdown', requestedBy: doc.createdBy, reference: doc._id,
          }, now);
        }
        opened += batch.length;
        await this.app.store.shutdowns.updateOne({ _id: doc._id }, { $set: { erasuresOpened: opened } });
      }
      await this.app.store.shutdowns.updateOne({ _id: doc._id, status: 'collection-stopped' }, { $set: { status: 'erasing' } });
      return;
    }
    if (doc.status === 'erasing') {
      const sweep = await this.app.store.sweeps.findById(doc.sweepId, { status: 1 }).lean();
      const progress = await this.app.erasures.groupProgress({ reference: doc._id }, doc, now);
      if (sweep?.status === 'completed' && !progress.anyOpen) {
        await this.app.store.shutdowns.updateOne({ _id: doc._id, status: 'erasing' }, { $set: { status: 'completed', completedAt: now, openRequests: 0, openRequestsCountedAt: now } });
        this.log.info({ shutdownId: doc._id, functionId: doc.functionId }, 'function shutdown completed: its data is erased or anonymized');
      } else if (progress.counted) {
        await this.app.store.shutdowns.updateOne({ _id: doc._id }, { $set: progress.counted });
      }
    }
  }

  /** Moves on (in the background) the shutdowns not completed yet. */
  async tick(now = new Date()): Promise<void> {
    for (const doc of await this.app.store.shutdowns.find({ status: { $in: ['collection-stopped', 'erasing'] } }, { _id: 1 }).limit(20).lean()) this.kick(doc._id, now);
  }

  /** Stops moving shutdowns on (after the current batch) and waits for the runs in progress. */
  async close(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.running.values());
  }

  /**
   * One shutdown with its sweep's status. Its open erasure requests are the count the background run
   * stored (`openRequests` as of `openRequestsCountedAt`; see ErasureService.groupProgress): counting
   * them here read the whole request collection on every view, and under a large shutdown the views
   * timed out at the gateway.
   */
  async get(id: string): Promise<ShutdownDoc & { sweep: { status: string } | null }> {
    const doc = await this.app.store.shutdowns.findById(id).lean();
    if (!doc) throw RetentionErrors.shutdownNotFound(`No shutdown ${id}`);
    const sweep = await this.app.store.sweeps.findById(doc.sweepId, { status: 1 }).lean();
    return { ...doc, sweep: sweep ? { status: sweep.status } : null };
  }

  async list(limit: number): Promise<ShutdownDoc[]> {
    return this.app.store.shutdowns.find({}).sort({ createdAt: -1 }).limit(limit).lean();
  }
}

export const shutdownsPlugin = fp(async function shutdowns(app: FastifyInstance, opts: { config: Pick<Config, 'CONSENT_URL'> }) {
  const service = new ShutdownService(app, opts.config);
  app.decorate('shutdowns', service);
  app.addHook('preClose', async () => service.close());
}, { name: 'retention-shutdowns', dependencies: ['retention-models', 'retention-erasures', 'retention-sweeps', 'retention-policies', 'retention-audit'] });
