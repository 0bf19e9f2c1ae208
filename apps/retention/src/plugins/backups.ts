import type { ErasureGround, ErasureParticipant, ServiceName } from '@pipp/contracts';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { randomUUID } from 'node:crypto';
import type { Config } from '../config.js';
import { suppressedUntil, toReapply, type BackupGeneration, type Suppression } from '../domain/backups.js';
import type { ErasureRequested } from '../events/participant-protocol.js';
import { RetentionErrors } from '../errors.js';
import type { Actor, BackupGenerationDoc, RestoreDoc, SuppressionDoc } from './models.js';

const DAY_MS = 86_400_000;
const PLAN_BATCH = 200;

declare module 'fastify' {
  interface FastifyInstance {
    /** Backup generations, the suppression list and restores (see BackupService). */
    backups: BackupService;
  }
}

const asGeneration = (g: BackupGenerationDoc): BackupGeneration => ({ generationId: g._id, service: g.service, takenAt: g.takenAt, expiresAt: g.expiresAt });
const asSuppression = (s: SuppressionDoc): Suppression => ({ requestId: s._id, subjectId: s.subjectId, requestedAt: s.requestedAt, completedAt: s.completedAt });

/**
 * Backups (policy 4.2-backups): every backup generation of a service's database is recorded (when
 * taken, until when it is kept, where); every erased subject goes on a suppression list (retention's
 * own part of each erasure) that holds them until the last generation that may contain them has
 * expired. Restoring a generation re-applies, before the data is used again, every erasure the
 * generation may predate: an erasure request narrowed to the restored service (kind `restore`), per
 * suppressed erasure. The restore is `clean` once all of them completed; the restored service must not
 * serve the data before (it polls `GET /v1/retention/admin/restores/:restoreId`).
 */
export class BackupService {
  private readonly log: FastifyBaseLogger;

  constructor(private readonly app: FastifyInstance, private readonly config: Config) {
    this.log = app.log.child({ component: 'backups' });
  }

  /**
   * Records a backup generation. `expiresAt` defaults to takenAt + BACKUP_RETENTION_DAYS.
   * @throws PIPP_BAD_TIME (400) when takenAt is in the future or expiresAt not after takenAt.
   */
  async record(input: { service: ServiceName; takenAt: Date; expiresAt?: Date | undefined; location: string; reference?: string | undefined }, by: Actor, now = new Date()): Promise<BackupGenerationDoc> {
    if (input.takenAt > new Date(now.getTime() + 60_000)) throw RetentionErrors.badTime('takenAt lies in the future');
    const expiresAt = input.expiresAt ?? new Date(input.takenAt.getTime() + this.config.BACKUP_RETENTION_DAYS * DAY_MS);
    if (expiresAt <= input.takenAt) throw RetentionErrors.badTime('expiresAt must be after takenAt');
    const doc = {
      _id: `bk-${randomUUID()}`, service: input.service, takenAt: input.takenAt, expiresAt, location: input.location,
      ...(input.reference ? { reference: input.reference } : {}), status: expiresAt > now ? 'held' as const : 'expired' as const, recordedAt: now, recordedBy: by,
    };
    await this.app.store.backups.create(doc);
    await this.app.audit({ actor: by, action: 'backup.record', target: { type: 'backup-generation', id: doc._id }, clause: '4.2-backups', details: { service: input.service, location: input.location } });
    this.log.info({ generationId: doc._id, service: input.service, takenAt: input.takenAt, expiresAt }, 'backup generation recorded');
    return doc;
  }

  async generation(id: string): Promise<BackupGenerationDoc> {
    const g = await this.app.store.backups.findById(id).lean();
    if (!g) throw RetentionErrors.backupNotFound(`No backup generation ${id}`);
    return g;
  }

  /**
   * Retention's own part of an erasure: the subject goes on the suppression list (idempotent, keyed by
   * the request). Erasures re-applied after a restore are not listed again.
   */
  async suppress(p: ErasureRequested, now = new Date()): Promise<void> {
    if (p.restoreId) return;
    await this.app.store.suppressions.updateOne({ _id: p.requestId }, {
      $setOnInsert: { subjectId: p.subjectId, scope: p.scope, ground: p.ground, requestedAt: now, completedAt: null, status: 'active' },
    }, { upsert: true });
  }

  /**
   * Starts a restore of a generation: records it and plans the re-applied erasures (continued by the
   * scheduler when there are many).
   * @throws PIPP_BACKUP_NOT_FOUND (404), PIPP_BACKUP_EXPIRED (409), PIPP_ERASURE_GROUND_NOT_ADMISSIBLE-free.
   */
  async restore(generationId: string, by: Actor, now = new Date()): Promise<RestoreDoc> {
    const g = await this.generation(generationId);
    if (g.expiresAt <= now) throw RetentionErrors.backupExpired(`Generation ${generationId} expired on ${g.expiresAt.toISOString()}; it must be purged, not restored`, { clause: '4.2-backups' });
    const doc: RestoreDoc = { _id: `rs-${randomUUID()}`, generationId, service: g.service, status: 'reapplying', planned: 0, planningDone: false, cursor: null, requestedAt: now, requestedBy: by };
    await this.app.store.restores.create(doc);
    await this.app.audit({ actor: by, action: 'backup.restore', target: { type: 'backup-generation', id: generationId }, clause: '4.2-backups', details: { restoreId: doc._id, service: g.service } });
    this.log.info({ restoreId: doc._id, generationId, service: g.service }, 'restore started: re-applying erasures before the data is used');
    await this.advance(doc, now);
    return (await this.app.store.restores.findById(doc._id).lean())!;
  }

  /**
   * One restore. Its erasures still open are the count the background run stored (`openRequests` as of
   * `openRequestsCountedAt`; see ErasureService.groupProgress), not a count per view.
   */
  async getRestore(id: string): Promise<RestoreDoc> {
    const r = await this.app.store.restores.findById(id).lean();
    if (!r) throw RetentionErrors.restoreNotFound(`No restore ${id}`);
    return r;
  }

  /** Plans the next batch of re-applied erasures of a restore, or marks it clean when all completed. */
  private async advance(restore: RestoreDoc, now: Date): Promise<void> {
    await this.app.outbox.withDocument(this.app.store.restores, restore._id, async () => {
      const r = await this.app.store.restores.findById(restore._id).lean();
      if (r && r.status === 'reapplying') await this.advanceLocked(r, now);
    });
  }

  private async advanceLocked(r: RestoreDoc, now: Date): Promise<void> {
    const g = await this.app.store.backups.findById(r.generationId).lean();
    if (!g) return;
    if (!r.planningDone) {
      const filter = { status: 'active', ...(r.cursor ? { _id: { $gt: r.cursor } } : {}) };
      const batch = await this.app.store.suppressions.find(filter).sort({ _id: 1 }).limit(PLAN_BATCH).lean();
      const due = toReapply(asGeneration(g), batch.map(asSuppression));
      const byId = new Map(batch.map((s) => [s._id, s]));
      let planned = 0;
      for (const s of due) {
        const original = byId.get(s.requestId)!;
        const ground: ErasureGround = original.ground === '2.4.2(5)' ? '4.2.5' : original.ground;
        const opened = await this.app.erasures.open({
          id: `${r._id}-${s.requestId}`.slice(0, 128), kind: 'restore', restoreId: r._id, subjectId: s.subjectId, scope: original.scope, ground,
          origin: 'operator', requestedBy: r.requestedBy, participants: [g.service as ErasureParticipant], reference: s.requestId,
        }, now);
        if (opened.outcome === 'created') planned += 1;
      }
      const last = batch.at(-1)?._id ?? r.cursor;
      await this.app.store.restores.updateOne({ _id: r._id }, { $set: { cursor: last, planningDone: batch.length < PLAN_BATCH }, $inc: { planned } });
      if (batch.length >= PLAN_BATCH) return;
    }
    const progress = await this.app.erasures.groupProgress({ restoreId: r._id }, r, now);
    if (!progress.anyOpen) {
      const done = await this.app.store.restores.updateOne({ _id: r._id, status: 'reapplying', planningDone: true }, { $set: { status: 'clean', cleanAt: now, openRequests: 0, openRequestsCountedAt: now } });
      if (done.modifiedCount) this.log.info({ restoreId: r._id, service: r.service }, 'restore clean: no erased subject came back');
    } else if (progress.counted) {
      await this.app.store.restores.updateOne({ _id: r._id }, { $set: progress.counted });
    }
  }

  /**
   * The scheduler's pass: continues restores, marks expired generations, and lifts suppressions no
   * unexpired generation may hold any more.
   */
  async tick(now = new Date()): Promise<void> {
    for (const r of await this.app.store.restores.find({ status: 'reapplying' }).limit(20).lean()) await this.advance(r, now);
    await this.app.store.backups.updateMany({ status: 'held', expiresAt: { $lte: now } }, { $set: { status: 'expired' } });
    const generations = (await this.app.store.backups.find({ status: 'held' }).lean()).map(asGeneration);
    const candidates = await this.app.store.suppressions.find({ status: 'active', completedAt: { $ne: null } }).sort({ completedAt: 1 }).limit(500).lean();
    const lift = candidates.filter((s) => suppressedUntil(asSuppression(s), generations, now) === null).map((s) => s._id);
    if (lift.length) {
      await this.app.store.suppressions.updateMany({ _id: { $in: lift }, status: 'active' }, { $set: { status: 'lifted', liftedAt: now } });
      this.log.info({ lifted: lift.length }, 'suppressions lifted: no unexpired backup may hold these subjects');
    }
  }

  /**
   * Until when a completed request's subject stays suppressed against backups (views); null when not
   * (any more). The suppression entry's completion time is written just after the request's; until
   * then the request's own is used, so a view read at completion already says it.
   */
  async suppressedUntil(request: { _id: string; completedAt?: Date | null | undefined }, now = new Date()): Promise<Date | null> {
    const s = await this.app.store.suppressions.findById(request._id).lean();
    const completedAt = s?.completedAt ?? request.completedAt ?? null;
    if (!s || s.status !== 'active' || !completedAt) return null;
    const generations = (await this.app.store.backups.find({ status: 'held' }).lean()).map(asGeneration);
    const until = suppressedUntil(asSuppression({ ...s, completedAt }), generations, now);
    return until instanceof Date ? until : null;
  }
}

export const backupsPlugin = fp(async function backups(app: FastifyInstance, opts: { config: Config }) {
  app.decorate('backups', new BackupService(app, opts.config));
}, { name: 'retention-backups', dependencies: ['retention-models', 'retention-erasures', 'retention-audit'] });
