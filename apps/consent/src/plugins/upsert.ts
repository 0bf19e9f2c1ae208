/**
 * Runs an upsert, once more if it failed with a duplicate key: two writers upserting the same new
 * `_id` at once (two instances starting, two notices with the same text) can both try the insert, and
 * the loser's retry then finds the document and updates it.
 */
export async function upsert<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if ((err as { code?: number }).code !== 11000) throw err;
    return write();
  }
}
