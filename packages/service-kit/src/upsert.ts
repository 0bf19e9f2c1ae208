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
