/**
 * Most write operations sent in one `update` command to FerretDB 1.24. Its update handler keeps every
 * operation's read cursor (one SQLite connection each) open until the whole command ends, from a pool
 * of 100 connections, so a command of about 100 updates waits forever for a connection; it also keeps
 * read transactions open that stop the SQLite log from being checkpointed. See docs/infrastructure.md.
 */
export const MAX_WRITES_PER_COMMAND = 32;

/**
 * Runs a bulk write as several commands of at most MAX_WRITES_PER_COMMAND operations, one after the
 * other: `write` gets each chunk (typically `(chunk) => model.bulkWrite(chunk, { ordered: false })`).
 * Use it for every bulk write that may hold more than a handful of operations; the driver would
 * otherwise send them all in one command.
 * @returns the results of the chunks, in order.
 * @throws what `write` throws for the first failing chunk (earlier chunks stay written).
 */
export async function bulkWriteChunked<Op, R>(ops: readonly Op[], write: (chunk: Op[]) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < ops.length; i += MAX_WRITES_PER_COMMAND) results.push(await write(ops.slice(i, i + MAX_WRITES_PER_COMMAND)));
  return results;
}
