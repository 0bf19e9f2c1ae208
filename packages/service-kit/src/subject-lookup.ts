import DataLoader from 'dataloader';

/** `load(subjectId)`: the documents of one data subject, found together with other subjects' (see `subjectLookup`). */
export interface SubjectLookup<T> {
  load(subjectId: string): Promise<T[]>;
}

/**
 * Finds data subjects' documents together: the first `load(subjectId)` runs `find([subjectId])` at
 * once, and the loads made while a query is running wait and share the next one, with all their
 * subject ids (`find(ids)` is typically `model.find({ subjectId: { $in: ids } })`). Nothing is cached:
 * each load sees the documents as they are when its query starts.
 *
 * Why: on FerretDB 1.24 a filter other than `{ _id }` reads the whole collection
 * (docs/infrastructure.md), so N erasures handled at once cost N collection reads without this and
 * about one with it; on MongoDB it saves round trips. Built on DataLoader (batching only).
 * @param subjectOf the subject id a document belongs to (the field `find` filtered on).
 * @throws from `load`, what `find` throws (every load of that query gets the error).
 */
export function subjectLookup<T>(find: (subjectIds: string[]) => PromiseLike<T[]>, subjectOf: (doc: T) => string, maxBatch = 500): SubjectLookup<T> {
  let running: Promise<unknown> = Promise.resolve();
  const loader = new DataLoader<string, T[]>(async (ids) => {
    const query = Promise.resolve(find([...ids])); // once: a mongoose query runs again on each then()
    running = query.catch(() => undefined);
    const docs = await query;
    const bySubject = new Map<string, T[]>(ids.map((id) => [id, []]));
    for (const doc of docs) bySubject.get(subjectOf(doc))?.push(doc);
    return ids.map((id) => bySubject.get(id)!);
  }, {
    cache: false,
    maxBatchSize: maxBatch,
    // A new batch starts once the query in flight (if any) has answered; loads made meanwhile join it.
    batchScheduleFn: (callback) => { void running.then(() => setImmediate(callback)); },
  });
  return { load: (subjectId) => loader.load(subjectId) };
}
