import type { DecisionRequest } from '@pipp/contracts';
import type { FastifyInstance } from 'fastify';
import { bulkWriteChunked } from '@pipp/service-kit';
import fp from 'fastify-plugin';
import { sha256 } from '../domain/receipt.js';
import type { ConsentModels } from './models.js';

interface Pending {
  subjectId: string; service: string; purpose: string; legalBasis: string; evidenceRef: string;
  recipientId?: string | undefined; country?: string | undefined; firstAt: Date; lastAt: Date; count: number;
}

/**
 * Records processing that decisions allowed without consent on a claimed legal basis (policy
 * 2.4.2(4), 3.4; DESIGN.md: "every processing that is not based on consent records its basis and an
 * evidence reference"), aggregated per subject, service, purpose, basis, evidence, recipient and
 * country, so the subject sees it in their view and export. Written behind the decision path (one
 * bulk write per FLUSH_MS), never slowing a decision; never for a subject whose account erasure began
 * (`isErased`, checked at the write: the erasure deleted what was there).
 */
export class LegalBasisLog {
  private pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly models: ConsentModels,
    private readonly onError: (err: unknown) => void,
    private readonly isErased: (subjectId: string) => Promise<boolean>,
    private readonly flushMs = 1000,
  ) {}

  note(req: DecisionRequest, legalBasis: string, evidenceRef: string): void {
    const key = sha256([req.subjectId, req.service, req.purpose, legalBasis, evidenceRef, req.recipientId ?? '', req.country ?? ''].join('\u0000'));
    const now = new Date();
    const p = this.pending.get(key);
    if (p) {
      p.count += 1;
      p.lastAt = now;
    } else {
      this.pending.set(key, {
        subjectId: req.subjectId, service: req.service, purpose: req.purpose, legalBasis, evidenceRef,
        recipientId: req.recipientId, country: req.country, firstAt: now, lastAt: now, count: 1,
      });
    }
    this.timer ??= setTimeout(() => { this.timer = undefined; void this.flush(); }, this.flushMs);
  }

  /**
   * Drops what is pending for a subject (their erasure) and waits for a write in progress, which may
   * have checked `isErased` before the erasure began: what the erasure deletes next is then all there is.
   */
  async forget(subjectId: string): Promise<void> {
    for (const [k, p] of this.pending) if (p.subjectId === subjectId) this.pending.delete(k);
    await this.flushing;
  }

  /** Writes what is pending now. */
  async flush(): Promise<void> {
    await this.flushing;
    if (!this.pending.size) return;
    const batch = this.pending;
    this.pending = new Map();
    this.flushing = this.write(batch).then(() => undefined, this.onError).finally(() => { this.flushing = undefined; });
    await this.flushing;
  }

  private async write(batch: Map<string, Pending>): Promise<void> {
    const subjects = [...new Set([...batch.values()].map((p) => p.subjectId))];
    const erased = new Set((await Promise.all(subjects.map(async (s) => (await this.isErased(s) ? s : undefined)))).filter(Boolean));
    const live = [...batch].filter(([, p]) => !erased.has(p.subjectId));
    await bulkWriteChunked(live.map(([id, p]) => ({
      updateOne: {
        filter: { _id: id },
        update: {
          $setOnInsert: {
            subjectId: p.subjectId, service: p.service, purpose: p.purpose, legalBasis: p.legalBasis, evidenceRef: p.evidenceRef,
            ...(p.recipientId ? { recipientId: p.recipientId } : {}), ...(p.country ? { country: p.country } : {}), firstAt: p.firstAt,
          },
          $set: { lastAt: p.lastAt },
          $inc: { count: p.count },
        },
        upsert: true,
      },
    })), (chunk) => this.models.legalBasisUses.bulkWrite(chunk, { ordered: false }));
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    legalBasisLog: LegalBasisLog;
  }
}

export const legalBasisLogPlugin = fp(async function legalBasisLog(app: FastifyInstance) {
  const log = new LegalBasisLog(app.models, (err) => app.log.warn({ err }, 'could not record processing without consent'), (subjectId) => app.ledger.isErased(subjectId));
  app.decorate('legalBasisLog', log);
  app.addHook('preClose', async () => log.close());
}, { name: 'consent-legal-basis-log', dependencies: ['consent-models', 'consent-ledger'] });
