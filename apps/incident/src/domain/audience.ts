/** Largest number of subject ids one affected-subject chunk holds (and one upload may carry). */
export const CHUNK_SIZE = 10_000;

/**
 * Splits new affected subjects into chunks: first fills the room left in the last chunk (`lastSize`
 * ids already), then new chunks of `CHUNK_SIZE`. Ids already recorded (`known`) and duplicates are
 * dropped. Returns the ids per chunk, the first entry going to the last existing chunk.
 */
export function chunkNewSubjects(ids: readonly string[], known: ReadonlySet<string>, lastSize: number, size = CHUNK_SIZE): { fresh: string[]; intoLast: string[]; newChunks: string[][] } {
  const fresh = [...new Set(ids)].filter((id) => !known.has(id));
  const room = lastSize > 0 ? Math.max(0, size - lastSize) : 0;
  const intoLast = fresh.slice(0, room);
  const newChunks: string[][] = [];
  for (let i = room; i < fresh.length; i += size) newChunks.push(fresh.slice(i, i + size));
  return { fresh, intoLast, newChunks };
}
