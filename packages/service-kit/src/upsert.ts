import type { Model } from 'mongoose';

/**
 * Runs an upsert again when it failed with a duplicate key (E11000), up to `attempts` times in all:
 * two writers upserting the same new `_id` at once (two instances starting together, two deliveries of
 * one event) both try the insert; the loser's retry finds the document and updates it. FerretDB 1.24
 * reports the loser this way even where MongoDB would retry by itself (docs/infrastructure.md).
 * @throws the write's error when it is not a duplicate key, or still is after `attempts`.
 */
export async function upsertRaced<T>(write: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await write();
    } catch (err) {
      if ((err as { code?: number }).code !== 11000 || attempt >= attempts) throw err;
    }
  }
}

/**
 * Stores `set` as document `id` of `model` unless the stored one is newer by `timeField` (an event of
 * one subject may arrive again, or late, e.g. a replayed older consent record): an update where the
 * stored time is not later, else an insert; a duplicate key on that insert means a newer one is stored.
 * @returns whether `set` was stored (false: a newer state is already there, so the caller must not act on it).
 */
export async function storeIfNewer<T extends { _id: string }>(model: Model<T>, id: string, timeField: keyof T & string, set: Omit<T, '_id'>): Promise<boolean> {
  const updated = await model.updateOne({ _id: id, [timeField]: { $lte: set[timeField as keyof typeof set] } } as never, { $set: set } as never);
  if (updated.matchedCount) return true;
  return model.create({ _id: id, ...set } as never).then(() => true, (err: { code?: number }) => {
    if (err.code !== 11000) throw err;
    return false;
  });
}
