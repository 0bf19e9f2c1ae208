import { AsyncLocalStorage } from 'node:async_hooks';
import type { Query, Schema } from 'mongoose';

/**
 * Serializes work on one key within this process; re-entrant (a holder may take the same key again).
 * Why: FerretDB 1.24 (SQLite) applies an update by reading the document and writing it back, without
 * isolation from other connections, so concurrent updates of ONE document lose writes (even `$inc`,
 * `$push` and conditional compare-and-set filters: measured, docs/infrastructure.md). Writes to the
 * same document from one process are therefore made one at a time.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();
  private readonly held = new AsyncLocalStorage<ReadonlySet<string>>();
  private tracking = false;

  /**
   * Whether this lock keeps Node's async context tracking on: from a `run` until no key is held or
   * awaited. On Node 20 an enabled AsyncLocalStorage runs a hook for every promise the process creates
   * (measured: about 15 % of an async Fastify route's throughput), so an idle lock turns it off.
   */
  get contextTracking(): boolean {
    return this.tracking;
  }

  async run<T>(key: string, fn: () => PromiseLike<T>): Promise<T> {
    const mine = this.held.getStore();
    if (mine?.has(key)) return fn();
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const tail = prev.then(() => new Promise<void>((r) => { release = r; }));
    this.tails.set(key, tail);
    await prev;
    try {
      // Awaited inside the context: a lazy thenable (a mongoose Query) runs when awaited, and must run
      // holding the key (its own write hooks then see the key as held, instead of waiting for it).
      this.tracking = true;
      return await this.held.run(new Set([...(mine ?? []), key]), async () => await fn());
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
      if (this.tails.size === 0) {
        // Nothing held or awaited: no context can need its keys any more.
        this.held.disable();
        this.tracking = false;
      }
    }
  }

  /**
   * Waits for the key and returns the function that releases it; when the caller's async context
   * already holds the key (re-entrance), returns at once with a release that does nothing.
   */
  acquire(key: string): Promise<() => void> {
    if (this.held.getStore()?.has(key)) return Promise.resolve(() => {});
    return new Promise((resolveAcquired) => {
      void this.run(key, () => new Promise<void>((release) => resolveAcquired(release)));
    });
  }

  /** Runs `fn` outside any held key (work started from inside a holder, e.g. a background loop, must not inherit its keys). */
  outside<T>(fn: () => T): T {
    return this.held.exit(fn);
  }

  /** Holds several keys (taken in sorted order, so two holders cannot deadlock). */
  async runAll<T>(keys: string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    const step = (i: number): Promise<T> => (i >= sorted.length ? fn() : this.run(sorted[i]!, () => step(i + 1)));
    return step(0);
  }
}

/** The lock key of one document. */
export const docKey = (coll: string, id: unknown) => `${coll}/${String(id)}`;

const SINGLE_DOCUMENT_WRITES = ['updateOne', 'findOneAndUpdate', 'replaceOne', 'findOneAndReplace', 'deleteOne', 'findOneAndDelete'] as const;

/** A scalar `_id` (string, number or ObjectId): a filter that names exactly one document. */
function scalarId(id: unknown): boolean {
  return id !== undefined && id !== null && (typeof id !== 'object' || 'toHexString' in (id as object));
}

type LockedQuery = Query<unknown, unknown> & { pippRelease?: () => void };

/**
 * Mongoose plugin (registered on each service's connection by the kit) that makes every
 * single-document write filtered by a scalar `_id` take that document's lock for its duration, the
 * lock the outbox relay also takes before it removes published entries. On FerretDB 1.24, where an
 * update rewrites the whole document, two concurrent writes to one document (say, a service's `$set`
 * and the relay's `$pullAll`) otherwise undo each other. Writes filtered otherwise, and driver-level
 * writes, are not covered: wrap those in `app.outbox.withDocument`.
 */
export function documentLocksPlugin(locks: KeyedLock) {
  return (schema: Schema) => {
    for (const op of SINGLE_DOCUMENT_WRITES) {
      schema.pre(op, async function lock(this: LockedQuery) {
        const id = (this.getFilter() as { _id?: unknown })._id;
        if (!scalarId(id)) return;
        this.pippRelease = await locks.acquire(docKey(this.model.collection.collectionName, id));
      });
      const release = function release(this: LockedQuery) {
        const r = this.pippRelease;
        this.pippRelease = undefined;
        r?.();
      };
      schema.post(op, release);
      schema.post(op, function onError(this: LockedQuery, error: Error, _res: unknown, next: (err?: Error) => void) {
        release.call(this);
        next(error);
      });
    }
  };
}
