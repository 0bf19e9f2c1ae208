import { upsertRaced } from '@pipp/service-kit';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Model } from 'mongoose';
import { DsErrors } from '../errors.js';
import type { Sealer } from './crypto.js';
import type { ErasedSubjectDoc } from './models.js';

/** How many `{ _id }` reads of the marks run at once when a request names many subjects (a release). */
const READ_CONCURRENCY = 8;

/**
 * The subjects whose account erasure began here (`erased_subjects`, keyed by a pseudonym of the
 * subject id: policy 4.1, 4.2; PIPL art. 47). From the moment an account erasure is marked, nothing
 * more is recorded about the subject: no sharing record, release, disclosure, indirect collection,
 * data about other people or independent authorization.
 *
 * Why a mark, and why in this order. Without transactions an erasure can only erase what its read of
 * the collections finds; a record written just after that read would survive it, with the subject id
 * in clear, and its recipient would never be told (a tester left 123 shares behind this way). So:
 * - the erasure participant writes the mark FIRST, then reads and plans (`mark`, events/erasure.ts);
 * - every writer inserts its record FIRST, then reads the mark (`recordUnlessErased`), and takes the
 *   record back and answers 410 PIPP_SUBJECT_ERASED when it is there.
 * Each side writes before it reads, so they cannot both miss the other: if the writer's read of the
 * mark came before the mark was written, its insert came before the mark too, hence before the
 * erasure's read, which finds (and erases, and notifies about) the record; otherwise the writer sees the
 * mark and takes its record back. Writers also look before inserting (`refuseErased`), so the common
 * case of an erased subject costs one read by `_id` and writes nothing.
 *
 * Only account erasures mark: an erasure of some categories does not end the relationship, and the
 * subject may consent to share those categories again afterwards (consent marks the same way).
 */
export class ErasedSubjects {
  constructor(private readonly deps: { model: Model<ErasedSubjectDoc>; sealer: Sealer; log: FastifyBaseLogger }) {}

  /** Marks the subject's account erased (idempotent; policy 4.2). Call before reading what to erase. */
  async mark(subjectId: string, requestId: string): Promise<void> {
    const _id = this.deps.sealer.erasedKey(subjectId);
    await upsertRaced(() => this.deps.model.updateOne({ _id }, { $setOnInsert: { _id, requestId, at: new Date() } }, { upsert: true }).exec());
  }

  /** Whether the subject's account erasure began (one read by `_id`). */
  async isErased(subjectId: string): Promise<boolean> {
    return (await this.deps.model.exists({ _id: this.deps.sealer.erasedKey(subjectId) })) !== null;
  }

  /** Which of `subjectIds` are erased, in their order (reads by `_id` only, a few at a time). */
  async erasedAmong(subjectIds: readonly string[]): Promise<string[]> {
    const erased: string[] = [];
    for (let i = 0; i < subjectIds.length; i += READ_CONCURRENCY) {
      const chunk = subjectIds.slice(i, i + READ_CONCURRENCY);
      const hits = await Promise.all(chunk.map(async (s) => this.isErased(s)));
      chunk.forEach((s, n) => { if (hits[n]) erased.push(s); });
    }
    return erased;
  }

  /**
   * Refuses a write about erased subjects before anything is written (policy 4.2).
   * @throws PIPP_SUBJECT_ERASED (410, clause 4.2) when one of `subjectIds` is erased.
   */
  async refuseErased(subjectIds: readonly string[]): Promise<void> {
    const erased = await this.erasedAmong(subjectIds);
    if (erased.length) throw erasedError(erased.length, subjectIds.length);
  }

  /**
   * A route's preHandler for reads of one subject's records (`:subjectId`): 410 PIPP_SUBJECT_ERASED
   * once the account erasure began (policy 4.2), as consent answers, rather than empty lists that read
   * as "never shared" (a fresh-clone trial). Deletion notices stay readable: they are what follows an
   * erasure (4.2-recipients).
   */
  readonly guardReads = async (request: { params: unknown }): Promise<void> => {
    await this.refuseErased([(request.params as { subjectId: string }).subjectId]);
  };

  /**
   * Records something about `subjectIds` unless their account erasure began, whatever the timing
   * (policy 4.1, 4.2): runs `insert`, then reads the marks and, when one appeared meanwhile, runs
   * `takeBack` on what was written and refuses. Insert-then-check here against mark-then-read in the
   * erasure: see the class comment. Callers call `refuseErased` first, before any other work (consent
   * decisions), so an erased subject costs one read and writes nothing.
   * @param what what is recorded, for the log (never a subject id).
   * @throws PIPP_SUBJECT_ERASED (410, clause 4.2); what `insert` or `takeBack` throws.
   */
  async recordUnlessErased<T>(subjectIds: readonly string[], what: string, insert: () => Promise<T>, takeBack: (written: T) => Promise<unknown>): Promise<T> {
    const written = await insert();
    const erased = await this.erasedAmong(subjectIds);
    if (erased.length) {
      await takeBack(written);
      this.deps.log.info({ what, subjects: subjectIds.length, erased: erased.length }, 'record taken back: an account erasure began during its write');
      throw erasedError(erased.length, subjectIds.length);
    }
    return written;
  }
}

function erasedError(erased: number, of: number) {
  return DsErrors.subjectErased(
    of === 1
      ? "This data subject's account was erased: nothing more is recorded or shared about them"
      : `${erased} of the ${of} data subjects' accounts were erased: nothing more is recorded or shared about them; remove their rows`,
    { clause: '4.2' },
  );
}

declare module 'fastify' {
  interface FastifyInstance {
    erasedSubjects: ErasedSubjects;
  }
}

/** Decorates `app.erasedSubjects` (policy 4.2): the account-erasure marks every write path checks. */
export const erasedSubjectsPlugin = fp(async function erasedSubjects(app: FastifyInstance) {
  app.decorate('erasedSubjects', new ErasedSubjects({ model: app.models.erasedSubjects, sealer: app.sealer, log: app.log }));
}, { name: 'pipp-ds-erased-subjects', dependencies: ['pipp-ds-models', 'pipp-ds-crypto'] });
