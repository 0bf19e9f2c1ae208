import {
  createEvent, topicFor, type EventEnvelope, type EventPayload, type EventType, type ServiceName,
} from '@pipp/contracts';
import type { FastifyBaseLogger } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { Producer } from 'kafkajs';
import { bulkWriteChunked } from './bulk.js';
import { docKey, type KeyedLock } from './document-locks.js';
import { PollingLoop } from './polling-loop.js';
import { upsertRaced } from './upsert.js';
import { Schema, type Connection, type Model, type QueryOptions, type UpdateQuery } from 'mongoose';

/**
 * An event waiting in its document's outbox. Stored as plain JSON (strings and numbers only) so the
 * relay can remove exactly what it published with `$pullAll` (FerretDB 1.24 ignores `$pull` with a
 * condition, see docs/infrastructure.md).
 */
export interface OutboxEntry {
  topic: string;
  key: string;
  value: string;
  eventId: string;
  type: string;
}

/** Field that holds a document's pending events; hidden from normal reads. */
export const OUTBOX_FIELD = '_outbox';
const HINTS = 'outbox_pending';

/**
 * Mongoose schema plugin: adds the hidden outbox array to a schema whose documents announce their
 * changes with events.
 */
export function outboxPlugin(schema: Schema): void {
  schema.add({ [OUTBOX_FIELD]: { type: [Schema.Types.Mixed], default: undefined, select: false } });
}

/**
 * A pointer to a document with pending events. `v` changes on every write (a random token): the relay
 * deletes a hint only if `v` is still the one it read, so an event appended meanwhile — even within
 * the same millisecond, which `at` cannot tell apart — keeps its hint and is published at once.
 */
interface Hint { _id: string; coll: string; docId: unknown; at: Date; v?: string }


/**
 * The transactional outbox (DESIGN.md "Events", house style 11), without multi-document transactions:
 * - a state change and the events announcing it are one single-document write (`insert`, `update`);
 * - then a small hint `{collection, _id}` is upserted so the relay finds the document without scanning;
 * - the relay publishes each pending entry (idempotent producer, acks=all, keyed by data subject),
 *   then removes exactly those entries; a periodic sweep of the registered collections recreates hints
 *   lost when a process died between the write and the hint.
 * Delivery is at least once; consumers deduplicate by event id.
 */
export class Outbox {
  private readonly models: Model<unknown>[] = [];
  private lastSweep = 0;
  private readonly relay: PollingLoop;

  constructor(private readonly deps: {
    connection: Connection;
    producer: Producer;
    source: ServiceName;
    topicPrefix: string;
    log: FastifyBaseLogger;
    pollMs: number;
    sweepMs: number;
    /** The connection's document locks (`app.mongo.locks`), shared with every single-document write. */
    locks: KeyedLock;
    /**
     * Read hinted documents one `_id` at a time instead of one `_id: { $in }` query: on FerretDB 1.24
     * (`app.mongo.ferretdb`), where only a filter of exactly `{ _id }` uses an index.
     */
    readOneByOne?: boolean;
  }) {
    this.relay = new PollingLoop({
      intervalMs: deps.pollMs,
      pass: () => this.drainOnce(Date.now() - this.lastSweep >= this.deps.sweepMs),
      log: deps.log,
      what: 'outbox relay pass',
      // Started outside the caller's document locks: the relay takes the locks it needs itself.
      detach: (run) => deps.locks.outside(run),
    });
  }

  private get locks(): KeyedLock {
    return this.deps.locks;
  }

  /** Registers a model whose documents carry outboxes (its schema must use `outboxPlugin`). */
  register<T>(model: Model<T>): Model<T> {
    if (!model.schema.path(OUTBOX_FIELD)) throw new Error(`model ${model.modelName} does not use outboxPlugin`);
    this.models.push(model as unknown as Model<unknown>);
    return model;
  }

  /**
   * Builds an outbox entry for an event, validated against its contract. The message key is `key`
   * when given, else the data subject, else the event id.
   * @throws EventValidationError when the payload does not match the event's schema.
   */
  entry<T extends EventType>(type: T, init: { payload: EventPayload<T>; subject?: string; correlationId?: string; id?: string; key?: string }): OutboxEntry {
    const { key, ...rest } = init;
    const event: EventEnvelope<T> = createEvent(type, { source: this.deps.source, ...rest });
    return {
      topic: topicFor(type, this.deps.topicPrefix),
      // The data subject keeps one person's events in order; `key` orders a flow without a subject
      // (e.g. one sweep's progress reports); otherwise the event id spreads them.
      key: key ?? event.subject ?? event.id,
      value: JSON.stringify(event),
      eventId: event.id,
      type,
    };
  }

  /** Inserts a document together with the events that announce it. */
  async insert<T>(model: Model<T>, doc: Record<string, unknown>, entries: OutboxEntry[]) {
    const created = await model.create({ ...doc, [OUTBOX_FIELD]: entries });
    await this.hint(model.collection.collectionName, created._id);
    return created;
  }

  /**
   * Updates one document and appends events to its outbox in the same write; returns the updated
   * document (as `findOneAndUpdate` with `new: true`) or null when nothing matched (then no event).
   * The returned document includes its hidden fields (pending outbox entries among them): FerretDB 1.24
   * implements no projection on findAndModify, so none is sent (do not pass `projection` either).
   */
  async update<T>(model: Model<T>, filter: Record<string, unknown>, update: UpdateQuery<T>, entries: OutboxEntry[], options: QueryOptions<T> = {}) {
    const withEvents = entries.length
      ? { ...update, $push: { ...((update as { $push?: object }).$push ?? {}), [OUTBOX_FIELD]: { $each: entries } } }
      : update;
    const write = async () => {
      const doc = await model.findOneAndUpdate(filter as never, withEvents as UpdateQuery<T>, { new: true, ...options })
        .select(includeHidden(model))
        .exec();
      if (doc && entries.length) await this.hint(model.collection.collectionName, (doc as { _id: unknown })._id);
      return doc;
    };
    const id = filter._id;
    return id !== undefined && (typeof id !== 'object' || id === null || 'toHexString' in id)
      ? this.withDocument(model, id, write)
      : write();
  }

  /**
   * Runs `fn` while no other write of this process touches the document `id` of `model`'s collection
   * (updates through `update` filtered by `_id` and the relay's removal of published entries take the
   * same lock). Use it around a read-modify-write of a document (FerretDB 1.24 loses concurrent
   * updates of one document; see KeyedLock). Re-entrant.
   */
  withDocument<R>(model: Model<never> | Model<unknown> | { collection: { collectionName: string } }, id: unknown, fn: () => PromiseLike<R>): Promise<R> {
    return this.locks.run(docKey(model.collection.collectionName, id), fn);
  }

  /** Asks the relay to run now (called after every write). */
  kick(): void {
    this.relay.kick();
  }

  start(): void {
    this.lastSweep = 0; // sweep once at start: recover entries left by a crash
    this.relay.start();
  }

  /** Stops polling and waits for the pass in progress to finish. */
  async stop(): Promise<void> {
    await this.relay.stop();
  }

  /** Publishes everything pending now; resolves when the outbox is empty (tests, shutdown). */
  async flush(): Promise<void> {
    await this.relay.idle();
    await this.drainOnce(true);
  }

  private get hints() {
    return this.deps.connection.collection<Hint>(HINTS);
  }

  private async hint(coll: string, docId: unknown) {
    const filter = { _id: `${coll}/${String(docId)}` };
    const update = { $set: { coll, docId, at: new Date(), v: randomUUID() } };
    await upsertRaced(() => this.hints.updateOne(filter, update, { upsert: true }));
    this.kick();
  }

  private async drainOnce(sweep: boolean) {
    if (sweep) {
      this.lastSweep = Date.now();
      for (const m of this.models) {
        const stranded = await m.collection.find({ [`${OUTBOX_FIELD}.0`]: { $exists: true } }, { projection: { _id: 1 } }).toArray();
        for (const d of stranded) await this.hints.updateOne({ _id: `${m.collection.collectionName}/${String(d._id)}` }, { $setOnInsert: { coll: m.collection.collectionName, docId: d._id, at: new Date(0), v: randomUUID() } }, { upsert: true });
      }
    }
    for (;;) {
      const batch = await this.hints.find({}).sort({ at: 1 }).limit(BATCH).toArray();
      if (!batch.length) return;
      await this.publish(batch);
      if (batch.length < BATCH || this.relay.stopped) return;
    }
  }

  /** Publishes the pending entries of a batch of hinted documents, then removes exactly those. */
  private async publish(batch: Hint[]) {
    const started = Date.now();
    const byColl = new Map<string, Hint[]>();
    for (const h of batch) byColl.set(h.coll, [...(byColl.get(h.coll) ?? []), h]);
    const pending: { coll: string; docId: unknown; entries: OutboxEntry[] }[] = [];
    for (const [coll, hints] of byColl) {
      const collection = this.deps.connection.collection(coll);
      const projection = { [OUTBOX_FIELD]: 1 };
      const docs = this.deps.readOneByOne
        ? (await Promise.all(hints.map((h) => collection.findOne({ _id: h.docId as never }, { projection })))).filter((d) => d !== null)
        : await collection.find({ _id: { $in: hints.map((h) => h.docId) as never[] } }, { projection }).toArray();
      for (const d of docs) {
        const entries = (d[OUTBOX_FIELD] ?? []) as OutboxEntry[];
        if (entries.length) pending.push({ coll, docId: d._id, entries });
      }
    }
    const found = Date.now();
    let sent = found;
    let pulled = found;
    if (pending.length) {
      // One topicMessages entry per topic, entries in document order, so one subject's events keep
      // their order (same key, same partition, idempotent producer with one request in flight).
      const byTopic = new Map<string, OutboxEntry[]>();
      for (const e of pending.flatMap((p) => p.entries)) byTopic.set(e.topic, [...(byTopic.get(e.topic) ?? []), e]);
      await this.deps.producer.sendBatch({
        acks: -1,
        topicMessages: [...byTopic].map(([topic, entries]) => ({
          topic,
          messages: entries.map((e) => ({
            key: e.key,
            value: e.value,
            headers: { 'content-type': 'application/json', 'event-type': e.type, 'event-id': e.eventId },
          })),
        })),
      });
      sent = Date.now();
      for (const [coll] of byColl) {
        const mine = pending.filter((p) => p.coll === coll);
        const ops = mine.map((p) => ({
          updateOne: { filter: { _id: p.docId as never }, update: { $pullAll: { [OUTBOX_FIELD]: p.entries } as never } },
        }));
        if (ops.length) await this.locks.runAll(mine.map((p) => docKey(coll, p.docId)), () => bulkWriteChunked(ops, (chunk) => this.deps.connection.collection(coll).bulkWrite(chunk, { ordered: false })));
      }
    }
    pulled = pending.length ? Date.now() : pulled;
    await bulkWriteChunked(batch.map((h) => ({ deleteOne: { filter: h.v === undefined ? { _id: h._id, at: h.at } : { _id: h._id, v: h.v } } })), (chunk) => this.hints.bulkWrite(chunk, { ordered: false }));
    const end = Date.now();
    this.deps.log.debug({ documents: pending.length, events: pending.reduce((n, p) => n + p.entries.length, 0), ms: end - started, phases: { read: found - started, send: sent - found, remove: pulled - sent, hints: end - pulled } }, 'outbox batch published');
  }
}

const BATCH = 200;

/**
 * A mongoose selection (`+a +b`) of every path a schema hides (`select: false`). Mongoose turns hidden
 * paths into a projection, which FerretDB 1.24 rejects on findAndModify ("support for field fields is
 * not implemented"); including them sends none. Use it on every `findOneAndUpdate` of a model whose
 * schema hides paths (every model with `outboxPlugin`).
 */
export function includeHidden(model: Model<unknown> | Model<never> | { schema: Schema }): string {
  const paths: string[] = [];
  model.schema.eachPath((path, type) => { if ((type as { options?: { select?: boolean } }).options?.select === false) paths.push(`+${path}`); });
  return paths.join(' ');
}
