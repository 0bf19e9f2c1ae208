import {
  createEvent, topicFor, type EventEnvelope, type EventPayload, type EventType, type ServiceName,
} from '@pipp/contracts';
import type { FastifyBaseLogger } from 'fastify';
import type { Producer } from 'kafkajs';
import { bulkWriteChunked } from './bulk.js';
import { docKey, type KeyedLock } from './document-locks.js';
import { PollingLoop } from './polling-loop.js';
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

/**
 * Mongoose schema plugin: adds the hidden outbox array to a schema whose documents announce their
 * changes with events.
 */
export function outboxPlugin(schema: Schema): void {
  schema.add({ [OUTBOX_FIELD]: { type: [Schema.Types.Mixed], default: undefined, select: false } });
}

/**
 * A document that holds pending events: its collection, `_id`, and its whole outbox as this process's
 * last write to it left it (in order), or no `entries` when they must be read (found by a sweep, or
 * left after a failed removal).
 */
interface Pending { coll: string; docId: unknown; entries?: OutboxEntry[] | undefined }


/**
 * The transactional outbox (DESIGN.md "Events", house style 11), without multi-document transactions:
 * - a state change and the events announcing it are one single-document write (`insert`, `update`);
 * - the writing process remembers the document and its outbox as the write left it (in memory, no
 *   second write) and wakes the relay;
 * - the relay publishes the remembered entries (idempotent producer, acks=all, keyed by data subject)
 *   without reading them back (a database read per event saved), then removes exactly those entries
 *   from their documents with `$pullAll`; one pass at a time;
 * - what a process could not publish before it died stays in its documents: a sweep of the registered
 *   collections finds it, at start and every `sweepMs` (so another instance publishes it within that).
 * Delivery is at least once; consumers deduplicate by event id.
 */
export class Outbox {
  private readonly models: Model<unknown>[] = [];
  /**
   * Documents written with events and not yet published, by `collection/_id`, oldest first. A key
   * stays in place until its document is published; a write meanwhile replaces the value (same place)
   * with the document's outbox after it, and what the relay published is then taken out by event id.
   */
  private pending = new Map<string, Pending>();
  private lastSweep = 0;
  private readonly relay: PollingLoop;
  /** The drain in progress (relay pass, flush or stop): drains run one at a time. */
  private draining: Promise<unknown> = Promise.resolve();

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
     * Read pending documents one `_id` at a time instead of one `_id: { $in }` query: on FerretDB 1.24
     * (`app.mongo.ferretdb`), where only a filter of exactly `{ _id }` uses an index.
     */
    readOneByOne?: boolean;
  }) {
    this.relay = new PollingLoop({
      intervalMs: deps.pollMs,
      pass: () => this.drain(Date.now() - this.lastSweep >= this.deps.sweepMs),
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
    this.remember(model.collection.collectionName, created._id, entries);
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
      if (doc && entries.length) {
        // The whole outbox the write left (entries not yet published, older ones first), read under the lock.
        const outbox = (doc as unknown as Record<string, unknown>)[OUTBOX_FIELD];
        this.remember(model.collection.collectionName, (doc as { _id: unknown })._id, Array.isArray(outbox) ? [...outbox] as OutboxEntry[] : undefined);
      }
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

  /**
   * Stops polling, waits for the pass in progress, then tries (for at most `STOP_DRAIN_MS`) to publish
   * what this process wrote meanwhile. Whatever is left stays in its documents, for the sweep at the
   * next start or another instance's periodic sweep. Call it after the consumers stopped (the kit's
   * infrastructure plugin does), so that their last writes are drained too.
   */
  async stop(): Promise<void> {
    await this.relay.stop();
    if (this.pending.size) {
      let timer: NodeJS.Timeout | undefined;
      const drained = this.drain(false, true).catch((err: unknown) => { this.deps.log.warn({ err }, 'outbox not drained at stop'); });
      await Promise.race([drained, new Promise<void>((r) => { timer = setTimeout(r, STOP_DRAIN_MS); })]);
      clearTimeout(timer);
    }
    if (this.pending.size) this.deps.log.warn({ documents: this.pending.size }, 'events left unpublished at stop; the next outbox sweep publishes them');
  }

  /** Publishes everything pending now; resolves when the outbox is empty (tests, shutdown). */
  async flush(): Promise<void> {
    await this.relay.idle();
    await this.drain(true);
  }

  /**
   * Notes a document's outbox as a write just left it (`undefined`: unknown, read it) and wakes the
   * relay. A new object each time: the relay compares identities to see a write during its pass.
   */
  private remember(coll: string, docId: unknown, outbox: OutboxEntry[] | undefined) {
    this.pending.set(`${coll}/${String(docId)}`, { coll, docId, entries: outbox });
    this.kick();
  }

  /** Runs `drainOnce` after the drain in progress, if any (two at once would publish entries twice). */
  private drain(sweep: boolean, untilEmpty = false): Promise<void> {
    const run = this.draining.then(() => this.drainOnce(sweep, untilEmpty));
    this.draining = run.catch(() => undefined);
    return run;
  }

  /**
   * Publishes the remembered documents, oldest first, in batches; with `sweep`, first finds the
   * documents that hold entries nobody remembers (left by a crash) and puts them first. Returns when
   * nothing is left, or after one batch once the relay is stopping (unless `untilEmpty`).
   */
  private async drainOnce(sweep: boolean, untilEmpty = false) {
    if (sweep) {
      this.lastSweep = Date.now();
      const found = new Map<string, Pending>();
      for (const m of this.models) {
        const coll = m.collection.collectionName;
        const stranded = await m.collection.find({ [`${OUTBOX_FIELD}.0`]: { $exists: true } }, { projection: { _id: 1 } }).toArray();
        for (const d of stranded) found.set(`${coll}/${String(d._id)}`, { coll, docId: d._id });
      }
      if (found.size) {
        // Left by a crash (nobody remembers them: older) first; then what this process remembers, in
        // the order it wrote it, read again where found (the database's order is no order: one
        // subject's event that failed to publish went out after the one written during the failure).
        const merged = new Map<string, Pending>();
        for (const [key, p] of found) if (!this.pending.has(key)) merged.set(key, p);
        for (const [key, p] of this.pending) merged.set(key, found.get(key) ?? p);
        this.pending = merged;
      }
    }
    for (;;) {
      const batch: [string, Pending][] = [];
      for (const entry of this.pending) {
        batch.push(entry);
        if (batch.length >= BATCH) break;
      }
      if (!batch.length) return;
      await this.publish(batch);
      if (batch.length < BATCH || (this.relay.stopped && !untilEmpty)) return;
    }
  }

  /**
   * Publishes the pending entries of a batch of documents (read from the database only where this
   * process does not know them), forgets them, then removes exactly those from their documents. A
   * document whose removal failed is marked unknown, so only what it still holds is sent again.
   */
  private async publish(batch: [string, Pending][]) {
    const started = Date.now();
    const toSend: { coll: string; docId: unknown; entries: OutboxEntry[] }[] = [];
    const byColl = new Map<string, Pending[]>();
    for (const [, p] of batch) {
      if (p.entries) { if (p.entries.length) toSend.push({ coll: p.coll, docId: p.docId, entries: p.entries }); } else byColl.set(p.coll, [...(byColl.get(p.coll) ?? []), p]);
    }
    for (const [coll, list] of byColl) {
      const collection = this.deps.connection.collection(coll);
      const projection = { [OUTBOX_FIELD]: 1 };
      const docs = this.deps.readOneByOne
        ? (await Promise.all(list.map((p) => collection.findOne({ _id: p.docId as never }, { projection })))).filter((d) => d !== null)
        : await collection.find({ _id: { $in: list.map((p) => p.docId) as never[] } }, { projection }).toArray();
      for (const d of docs) {
        const entries = (d[OUTBOX_FIELD] ?? []) as OutboxEntry[];
        if (entries.length) toSend.push({ coll, docId: d._id, entries });
      }
    }
    const found = Date.now();
    let sent = found;
    if (toSend.length) {
      // One topicMessages entry per topic, entries in document order, so one subject's events keep
      // their order (same key, same partition, idempotent producer with one request in flight).
      const byTopic = new Map<string, OutboxEntry[]>();
      for (const e of toSend.flatMap((p) => p.entries)) byTopic.set(e.topic, [...(byTopic.get(e.topic) ?? []), e]);
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
    }
    let failure: unknown;
    const failedColls = new Set<string>();
    for (const coll of new Set(toSend.map((p) => p.coll))) {
      const mine = toSend.filter((p) => p.coll === coll);
      const ops = mine.map((p) => ({
        updateOne: { filter: { _id: p.docId as never }, update: { $pullAll: { [OUTBOX_FIELD]: p.entries } as never } },
      }));
      try {
        await this.locks.runAll(mine.map((p) => docKey(coll, p.docId)), () => bulkWriteChunked(ops, (chunk) => this.deps.connection.collection(coll).bulkWrite(chunk, { ordered: false })));
      } catch (err) {
        failure ??= err;
        failedColls.add(coll);
      }
    }
    // Sent: forgotten, unless written again meanwhile (then what that write left, less what was sent);
    // where the removal failed, unknown (read again, so only what is still there is sent again).
    const sentIds = new Set(toSend.flatMap((p) => p.entries.map((e) => e.eventId)));
    for (const [key, p] of batch) {
      const now = this.pending.get(key);
      if (failedColls.has(p.coll)) this.pending.set(key, { coll: p.coll, docId: p.docId });
      else if (now === p) this.pending.delete(key);
      else if (now?.entries) this.pending.set(key, { ...now, entries: now.entries.filter((e) => !sentIds.has(e.eventId)) });
    }
    if (failure !== undefined) throw failure;
    const end = Date.now();
    this.deps.log.debug({ documents: toSend.length, events: toSend.reduce((n, p) => n + p.entries.length, 0), ms: end - started, phases: { read: found - started, send: sent - found, remove: end - sent } }, 'outbox batch published');
  }
}

const BATCH = 200;
const STOP_DRAIN_MS = 5000;

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
