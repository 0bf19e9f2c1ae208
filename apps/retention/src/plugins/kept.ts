import type { DataCategory, ErasureParticipant } from '@pipp/contracts';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { randomUUID } from 'node:crypto';
import { planPurges } from '../domain/kept.js';
import type { Actor } from './models.js';

const SYSTEM: Actor = { role: 'service', actorId: 'retention' };

declare module 'fastify' {
  interface FastifyInstance {
    /** Kept-by-law records and their purges (see KeptService). */
    kept: KeptService;
  }
}

/**
 * Kept by law (policy 4.2, 5.1, PIPL art. 47): what participants kept despite an erasure is recorded
 * here from their replies (basis, purge date, why), isolated from further processing at the
 * participant; when the purge date comes, a purge request (erasure kind `purge`, ground 5.1,
 * `purgeIsolated`, narrowed to the participants holding the records) goes through the saga. The
 * records are marked `purge-requested` first, then the request is opened with that id, so a crash in
 * between is finished by the next pass.
 */
export class KeptService {
  constructor(private readonly app: FastifyInstance) {}

  async tick(now = new Date()): Promise<number> {
    const kept = this.app.store.kept;
    // Finish purges whose request a crash prevented from being opened.
    const stranded = await kept.find({ state: 'purge-requested' }).limit(500).lean();
    const byPurge = new Map<string, typeof stranded>();
    for (const k of stranded) byPurge.set(k.purgeRequestId!, [...(byPurge.get(k.purgeRequestId!) ?? []), k]);
    const missing = byPurge.size ? new Set([...byPurge.keys()].filter(Boolean)) : new Set<string>();
    if (missing.size) for (const r of await this.app.store.requests.find({ _id: { $in: [...missing] } }, { _id: 1 }).lean()) missing.delete(r._id);
    for (const id of missing) {
      const records = byPurge.get(id)!;
      await this.openPurge(id, records[0]!.subjectId, [...new Set(records.map((r) => r.participant))].sort(), [...new Set(records.map((r) => r.category))].sort(), now);
    }

    const due = await kept.find({ state: 'isolated', purgeAt: { $lte: now }, participant: { $ne: 'retention' } }).sort({ purgeAt: 1 }).limit(500).lean();
    const plans = planPurges(due.map((k) => ({ keptId: k._id, subjectId: k.subjectId, participant: k.participant, category: k.category, purgeAt: k.purgeAt })), now);
    for (const plan of plans) {
      const purgeRequestId = `pg-${randomUUID()}`;
      await kept.updateMany({ _id: { $in: plan.keptIds }, state: 'isolated' }, { $set: { state: 'purge-requested', purgeRequestId } });
      await this.openPurge(purgeRequestId, plan.subjectId, plan.participants, plan.categories, now);
    }
    return plans.length;
  }

  private async openPurge(id: string, subjectId: string, participants: ErasureParticipant[], categories: DataCategory[], now: Date) {
    await this.app.erasures.open({
      id, kind: 'purge', subjectId, scope: { kind: 'categories', categories }, ground: '5.1', origin: 'expiry-sweep',
      requestedBy: SYSTEM, participants, purgeIsolated: true,
    }, now);
    this.app.log.info({ requestId: id, subjectId, participants, categories }, 'kept-by-law records due: purge requested');
  }
}

export const keptPlugin = fp(async function keptRecords(app: FastifyInstance) {
  app.decorate('kept', new KeptService(app));
}, { name: 'retention-kept', dependencies: ['retention-models', 'retention-erasures'] });
