import DataLoader from 'dataloader';
import type { Model } from 'mongoose';

/** `load(subjectId)`: the documents of one data subject, found together with other subjects' (see `subjectLookup`). */
export interface SubjectLookup<T> {
  load(subjectId: string): Promise<T[]>;
}

/** `erase(subjectId)`: deletes one data subject's documents together with other subjects' (see `subjectDeletion`). */
export interface SubjectDeletion {
  erase(subjectId: string): Promise<number>;
}

/**
 * Coalesces per-subject work: a call made while no batch runs starts `batch(ids)` in the next turn of
 * the event loop (with the calls made meanwhile), and the calls made while a batch runs wait and share
 * the next one. Nothing is cached; callers ask for a subject once at a time (the same subject twice in
 * one batch would get the same result twice). Built on DataLoader (batching only).
 */
function coalesced<R>(batch: (subjectIds: string[]) => Promise<Map<string, R>>, none: () => R, maxBatch: number): (subjectId: string) => Promise<R> {
  let running: Promise<unknown> = Promise.resolve();
  const loader = new DataLoader<string, R>(async (ids) => {
    const work = batch([...ids]);
    running = work.catch(() => undefined);
    const results = await work;
    return ids.map((id) => results.get(id) ?? none());
  }, {
    cache: false,
    maxBatchSize: maxBatch,
    // A new batch starts once the one in flight (if any) has answered; calls made meanwhile join it.
    batchScheduleFn: (callback) => { void running.then(() => setImmediate(callback)); },
  });
  return (subjectId) => loader.load(subjectId);
}

/**
 * Finds data subjects' documents together: concurrent `load(subjectId)` calls share one query, given
 * all their subject ids (`find(ids)` is typically `model.find({ subjectId: { $in: ids } })`); each
 * load sees the documents as they are when its query starts.
 *
 * Why: on FerretDB 1.24 a filter other than `{ _id }` reads the whole collection
 * (docs/infrastructure.md), so N erasures handled at once cost N collection reads without this and
 * about one with it; on MongoDB it saves round trips.
 * @param subjectOf the subject id a document belongs to (the field `find` filtered on).
 * @throws from `load`, what `find` throws (every load of that query gets the error).
 */
export function subjectLookup<T>(find: (subjectIds: string[]) => PromiseLike<T[]>, subjectOf: (doc: T) => string, maxBatch = 500): SubjectLookup<T> {
  const load = coalesced(async (ids) => {
    const docs = await Promise.resolve(find(ids)); // once: a mongoose query runs again on each then()
    const bySubject = new Map<string, T[]>();
    for (const doc of docs) {
      const id = subjectOf(doc);
      const list = bySubject.get(id);
      if (list) list.push(doc); else bySubject.set(id, [doc]);
    }
    return bySubject;
  }, () => [], maxBatch);
  return { load };
}

/**
 * `subjectLookup` over one model's `subjectId` field: a subject's documents of `model`, found with
 * those of the other loads in hand. `fields`: the fields to read (with `_id` and `subjectId`); none
 * for whole documents.
 */
export function subjectDocuments<T extends { subjectId?: string | null | undefined }>(model: Model<T>, fields?: string[], maxBatch = 500): SubjectLookup<T> {
  return subjectLookup(
    (subjectIds) => model.find({ subjectId: { $in: subjectIds } } as never, fields ? ['subjectId', ...fields].join(' ') : undefined).lean<T[]>(),
    (doc: T) => String(doc.subjectId),
    maxBatch,
  );
}

/**
 * Deletes data subjects' documents together (erasure, policy 4.2): concurrent `erase(subjectId)` calls
 * share one read of the documents' subject ids (for the counts) and one `deleteMany` with `$in`, on the
 * `field` that names the subject (same reason as `subjectLookup`); a call alone is one `deleteMany`.
 * @returns from `erase`, how many of the subject's documents the read found; one added between the
 *   read and the delete is deleted too, uncounted.
 * @throws from `erase`, what the read or the delete throws (then nothing or part may be deleted: a
 *   redelivered erasure deletes the rest).
 */
export function subjectDeletion<T>(model: Model<T>, field = 'subjectId', maxBatch = 500): SubjectDeletion {
  const erase = coalesced(async (ids) => {
    if (ids.length === 1) { // alone: the delete's own count, one query instead of two
      const { deletedCount } = await model.deleteMany({ [field]: ids[0] } as never).exec();
      return new Map([[ids[0]!, deletedCount]]);
    }
    const filter = { [field]: { $in: ids } } as never;
    const found = await model.find(filter, { [field]: 1 }).lean<Record<string, unknown>[]>().exec();
    const counts = new Map<string, number>();
    for (const doc of found) counts.set(String(doc[field]), (counts.get(String(doc[field])) ?? 0) + 1);
    if (found.length) await model.deleteMany(filter).exec();
    return counts;
  }, () => 0, maxBatch);
  return { erase };
}
