import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import mongoose, { type Connection, type Model, type Schema } from 'mongoose';
import { KeyedLock, documentLocksPlugin } from '../document-locks.js';

// Filters only on declared paths; unknown keys are dropped rather than reaching the server.
mongoose.set('strictQuery', true);

export interface MongoOptions {
  url: string;
  /** This service's own database (DESIGN.md: one database per service, nobody else's). */
  dbName: string;
  serverSelectionTimeoutMs?: number;
}

/** `app.mongo`: the service's connection and its models. */
export interface MongoHandle {
  connection: Connection;
  /** Per-document write locks of this process (see documentLocksPlugin); the outbox relay uses them too. */
  locks: KeyedLock;
  /**
   * Registers a model on the service's connection. Its collection and indexes are created when the
   * app becomes ready, and awaited, so an index the database cannot build stops start-up.
   */
  model<T>(name: string, schema: Schema<T>): Model<T>;
  /** Resolves when the server answers a ping within timeoutMs. */
  ping(timeoutMs?: number): Promise<void>;
  /** True when the server is FerretDB (its buildInfo carries `ferretdbVersion`), the local stand-in. */
  readonly ferretdb: boolean;
  /**
   * The filter to send for a conditional write of one document whose extra conditions (a version,
   * a state) the caller checked on a copy it read while holding the document's lock
   * (`app.outbox.withDocument`). On MongoDB: the whole filter, atomic there and the guard against
   * other instances. On FerretDB 1.24: `{ _id }` alone, because a filter with more than `_id` is
   * neither atomic there (it reads, then writes) nor indexed (it reads every document of the
   * collection); the process's document lock is the guard (docs/infrastructure.md).
   */
  guarded<F extends { _id: unknown }>(filter: F): F;
}

declare module 'fastify' {
  interface FastifyInstance {
    mongo: MongoHandle;
  }
}

/** Rejects after ms with an error naming what timed out. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Connects the service to its own MongoDB database with mongoose. Commands are not buffered while
 * disconnected (they fail at once, and the error handler answers 503); models are indexed at ready.
 */
export const mongoPlugin = fp(async function mongo(app: FastifyInstance, opts: MongoOptions) {
  const connection = mongoose.createConnection(opts.url, {
    dbName: opts.dbName,
    autoIndex: false,
    autoCreate: false,
    bufferCommands: false,
    serverSelectionTimeoutMS: opts.serverSelectionTimeoutMs ?? 5000,
    maxPoolSize: 20,
  });
  await connection.asPromise();
  const ferretdb = 'ferretdbVersion' in (await connection.db!.admin().command({ buildInfo: 1 }));
  // Every model on this connection serializes its single-document writes per document (FerretDB 1.24).
  const locks = new KeyedLock();
  connection.plugin(documentLocksPlugin(locks));
  const models: Model<unknown>[] = [];

  app.decorate('mongo', {
    connection,
    locks,
    model<T>(name: string, schema: Schema<T>): Model<T> {
      const m = connection.model<T>(name, schema);
      models.push(m as unknown as Model<unknown>);
      return m;
    },
    ferretdb,
    guarded: <F extends { _id: unknown }>(filter: F): F => (ferretdb ? { _id: filter._id } as F : filter),
    async ping(timeoutMs = 1500) {
      const db = connection.db;
      if (!db) throw new Error('MongoDB is not connected');
      await withTimeout(db.command({ ping: 1 }), timeoutMs, 'MongoDB ping');
    },
  } satisfies MongoHandle);

  app.addHook('onReady', async () => {
    for (const m of models) {
      await m.createCollection().catch((err: { codeName?: string; code?: number }) => {
        if (err.codeName !== 'NamespaceExists' && err.code !== 48) throw err;
      });
      await m.createIndexes();
    }
  });
  app.addHook('onClose', async () => {
    await connection.close();
  });
}, { name: 'pipp-mongo' });
