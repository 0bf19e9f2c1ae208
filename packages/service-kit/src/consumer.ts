import {
  DLQ_HEADERS, deadLetterTopicFor, parseEvent, type EventEnvelope, type EventType,
} from '@pipp/contracts';
import type { FastifyBaseLogger } from 'fastify';
import type { Consumer, Kafka, KafkaMessage, Producer } from 'kafkajs';
import type { Collection } from 'mongoose';
import { createHash } from 'node:crypto';

/** What a handler gets besides the event. */
export interface HandlerContext {
  topic: string;
  partition: number;
  offset: string;
  /** 1 for the first try, then 2, 3 … */
  attempt: number;
  log: FastifyBaseLogger;
}

export type EventHandler<T extends EventType> = (event: EventEnvelope<T>, ctx: HandlerContext) => Promise<void>;
export type EventHandlers = { [T in EventType]?: EventHandler<T> };

type ParseResult = ReturnType<typeof parseEvent>;

/** Handles several events of one type and one key together (see `ConsumerOptions.batchHandlers`). */
export type BatchEventHandler<T extends EventType> = (events: EventEnvelope<T>[], ctx: { log: FastifyBaseLogger }) => Promise<void>;
export type BatchEventHandlers = { [T in EventType]?: BatchEventHandler<T> };

export interface ConsumerOptions {
  /** Consumer group name, unique within the service (prefixed with the topic prefix and service name). */
  name: string;
  handlers: EventHandlers;
  /** Record processed event ids and skip duplicates (default true). */
  dedupe?: boolean;
  /**
   * Event types whose handlers are idempotent by records of their own (e.g. an erasure participant's
   * record per request id, answering a repeat with the same reply): no processed-event record for
   * them even when `dedupe` is on, which saves two database operations per event. A redelivered
   * event of these types runs its handler again.
   */
  idempotent?: EventType[];
  /** Start from the earliest offset when the group has none yet (default true). */
  fromBeginning?: boolean;
  /** Handler attempts before dead-lettering (default from config CONSUMER_MAX_ATTEMPTS). */
  maxAttempts?: number;
  /** First retry delay in ms, doubled per attempt (default from config CONSUMER_BACKOFF_MS). */
  backoffMs?: number;
  /** Partitions processed in parallel (default 1). */
  partitionsConsumedConcurrently?: number;
  /**
   * Within one partition's batch, messages with different keys (different data subjects) processed
   * in parallel, up to this many keys at once; one key's messages always stay in order (default 1:
   * one message at a time). Offsets are committed up to the last message before the first one not
   * yet done, so a stop or crash redelivers only what did not finish (handlers are idempotent).
   */
  keyConcurrency?: number;
  /**
   * With `keyConcurrency` > 1 and `dedupe: false`: the valid events of one key and type in a
   * partition's batch (one lane, in offset order) are given to this handler together, e.g. several
   * replies about one request applied in one database write. Infrastructure outages are retried; any
   * other failure hands the events one by one to `handlers` (which must exist for the type), with the
   * usual retries and dead-lettering.
   */
  batchHandlers?: BatchEventHandlers;
  /** Make the group unique to this process (broadcast: every instance sees every message). */
  broadcast?: boolean;
}

/** An error that will not go away by retrying: the message is dead-lettered at once. */
export class PoisonMessageError extends Error {
  override readonly name = 'PoisonMessageError';
}

const TRANSIENT = new Set([
  'MongoServerSelectionError', 'MongoNetworkError', 'MongoNetworkTimeoutError', 'MongoNotConnectedError',
  'MongoTopologyClosedError', 'KafkaJSConnectionError', 'KafkaJSRequestTimeoutError', 'KafkaJSNumberOfRetriesExceeded',
]);

/** Infrastructure outages are retried without limit (the partition waits); they are not the message's fault. */
export function isTransient(err: unknown): boolean {
  return err instanceof Error && TRANSIENT.has(err.name);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Deps {
  kafka: Kafka;
  producer: Producer;
  topicOf: (type: EventType) => string;
  groupId: string;
  processed: Collection;
  log: FastifyBaseLogger;
  defaults: { maxAttempts: number; backoffMs: number };
}

/**
 * A Kafka consumer that (DESIGN.md "Events", house style 12):
 * - validates every message against its contract; an invalid one goes to `<topic>.dlq` with the reason;
 * - skips events it already processed (a processed-event record per consumer group);
 * - retries a failing handler with exponential backoff, then dead-letters it with the attempt count
 *   and reason, so one poison message never stalls its partition; infrastructure outages are retried
 *   until they pass;
 * - marks an offset done only after the handler's effect is stored, and commits it after that.
 * Handlers must themselves be idempotent for the crash window between their effect and the
 * processed record (e.g. key writes by event id, or use conditional updates).
 */
export class ManagedConsumer {
  readonly groupId: string;
  private consumer: Consumer | undefined;
  private stopping = false;
  private crashed: Error | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly maxAttempts: number;
  private readonly backoffMs: number;

  constructor(private readonly deps: Deps, private readonly opts: ConsumerOptions) {
    this.groupId = deps.groupId;
    this.maxAttempts = opts.maxAttempts ?? deps.defaults.maxAttempts;
    this.backoffMs = opts.backoffMs ?? deps.defaults.backoffMs;
    const batched = Object.keys(opts.batchHandlers ?? {}) as EventType[];
    if (batched.length && ((opts.dedupe ?? true) || (opts.keyConcurrency ?? 1) <= 1)) throw new Error(`consumer ${opts.name}: batchHandlers need keyConcurrency > 1 and dedupe: false`);
    for (const t of batched) if (!opts.handlers[t]) throw new Error(`consumer ${opts.name}: batch handler for ${t} without a handler`);
  }

  /** Event types this consumer handles. */
  get types(): EventType[] {
    return Object.keys(this.opts.handlers) as EventType[];
  }

  /** Topics this consumer reads. */
  get topics(): string[] {
    return this.types.map((t) => this.deps.topicOf(t));
  }

  /** Null when healthy; the crash reason otherwise (used by /readyz). */
  get failure(): Error | undefined {
    return this.crashed;
  }

  async start(): Promise<void> {
    const consumer = this.deps.kafka.consumer({
      groupId: this.groupId,
      allowAutoTopicCreation: false,
      // A member that died without leaving holds its partitions until this passes.
      sessionTimeout: 10_000,
      heartbeatInterval: 1000,
      // How long an idle fetch waits at the broker. Events are delivered as they arrive whatever this is
      // (the broker answers as soon as one byte is there); it only sets how often an idle consumer asks
      // again, and how long a stop waits for the fetch in flight (docs/infrastructure.md: at 100 ms an
      // idle service's polls cost it and the broker about 20 ms of CPU per second each).
      maxWaitTimeInMs: 500,
      retry: { retries: 10, initialRetryTime: 200, maxRetryTime: 5000, restartOnFailure: async () => !this.stopping },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, (e) => {
      const error = e.payload.error;
      this.deps.log.error({ err: error, group: this.groupId, restart: e.payload.restart }, 'consumer crashed');
      if (!e.payload.restart) {
        this.crashed = error;
        this.scheduleRestart(); // kafkajs gives up on a non-retriable error; a consumer must not stay dead
      }
    });
    consumer.on(consumer.events.GROUP_JOIN, () => { this.crashed = undefined; });
    await consumer.connect();
    // Right after creation a topic's metadata may not have reached the broker yet (retriable
    // UNKNOWN_TOPIC_OR_PARTITION / LEADER_NOT_AVAILABLE): wait for it rather than fail start-up.
    for (let attempt = 1; ; attempt += 1) {
      try {
        await consumer.subscribe({ topics: this.topics, fromBeginning: this.opts.fromBeginning ?? true });
        break;
      } catch (err) {
        if (!(err as { retriable?: boolean }).retriable || attempt >= 40) throw err;
        await sleep(250);
      }
    }
    // run() resolves only after the first group join, which can wait for a dead member's session to
    // expire; start-up does not wait for it (a crash is reported through `failure` and /readyz).
    void consumer.run({
      autoCommit: true,
      autoCommitInterval: 1000,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.opts.partitionsConsumedConcurrently ?? 1,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale, commitOffsetsIfNecessary }) => {
        const go = () => isRunning() && !isStale();
        const keys = this.opts.keyConcurrency ?? 1;
        if (keys <= 1) {
          for (const message of batch.messages) {
            if (!go()) break;
            await this.process(batch.topic, batch.partition, message);
            resolveOffset(message.offset);
            await heartbeat();
          }
        } else {
          await this.processByKey(batch.topic, batch.partition, batch.messages, keys, go, resolveOffset, heartbeat);
        }
        await commitOffsetsIfNecessary();
      },
    }).catch((err: Error) => {
      this.crashed = err;
      this.deps.log.error({ err, group: this.groupId }, 'consumer failed to start');
      this.scheduleRestart();
    });
    if (this.stopping) await consumer.disconnect(); // stopped while (re)starting
  }

  /**
   * Replaces a consumer that kafkajs will not restart (a non-retriable error, e.g. after the broker
   * came back) with a new one, after `delayMs` (doubling up to 30 s while restarts fail); never while
   * stopping. Until it rejoins its group, /readyz reports it crashed.
   */
  private scheduleRestart(delayMs = 2000) {
    if (this.restartTimer || this.stopping) return;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      void (async () => {
        await this.consumer?.disconnect().catch(() => undefined);
        if (this.stopping) return;
        this.deps.log.warn({ group: this.groupId }, 'consumer restarting after a crash kafkajs does not recover from');
        await this.start();
      })().catch((err: unknown) => {
        this.deps.log.error({ err, group: this.groupId }, 'consumer restart failed; retrying');
        this.scheduleRestart(Math.min(delayMs * 2, 30_000));
      });
    }, delayMs);
    this.restartTimer.unref();
  }

  /** Stops fetching, lets the batch in hand finish, commits what was resolved, leaves the group. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    await this.consumer?.disconnect();
  }

  /**
   * One partition's batch as lanes, one per message key, run `keys` at a time; each lane in offset
   * order (runs of one type with a batch handler together). Resolves the offset of the longest prefix
   * of the batch that is done, as lanes progress.
   */
  private async processByKey(topic: string, partition: number, messages: KafkaMessage[], keys: number, go: () => boolean,
    resolveOffset: (offset: string) => void, heartbeat: () => Promise<void>): Promise<void> {
    const lanes = new Map<string, number[]>();
    messages.forEach((m, i) => {
      const key = m.key ? `k:${m.key.toString('latin1')}` : `n:${i}`; // a message without a key is a lane of its own
      const lane = lanes.get(key);
      if (lane) lane.push(i);
      else lanes.set(key, [i]);
    });
    const done = new Array<boolean>(messages.length).fill(false);
    // Each message is parsed once, whether it ends up in a batch run or alone.
    const parsedAt: ParseResult[] = [];
    const parse = (i: number) => (parsedAt[i] ??= parseEvent(messages[i]!.value));
    let prefix = 0;
    const finished = (i: number) => {
      done[i] = true;
      if (i !== prefix) return;
      while (prefix < messages.length && done[prefix]) prefix += 1;
      resolveOffset(messages[prefix - 1]!.offset);
    };
    const queue = [...lanes.values()];
    const worker = async () => {
      for (let lane = queue.shift(); lane; lane = queue.shift()) {
        for (let at = 0; at < lane.length;) {
          if (!go()) return;
          const run = this.batchRun(topic, lane, at, parse);
          if (run) {
            await this.processRun(topic, partition, run.indexes.map((i) => messages[i]!), run.events, heartbeat, run.indexes.map(parse));
            for (const i of run.indexes) finished(i);
            at += run.indexes.length;
          } else {
            await this.process(topic, partition, messages[lane[at]!]!, parse(lane[at]!));
            finished(lane[at]!);
            at += 1;
          }
          await heartbeat(); // (kafkajs sends one at most every heartbeatInterval)
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(keys, queue.length) }, worker));
  }

  /**
   * The longest run of valid events of one type with a batch handler, from `lane[at]` on; undefined
   * when `lane[at]` is not one (invalid, misplaced or without a batch handler: handled alone).
   */
  private batchRun(topic: string, lane: number[], at: number, parse: (i: number) => ParseResult) {
    const batchHandlers = this.opts.batchHandlers;
    if (!batchHandlers) return undefined;
    const indexes: number[] = [];
    const events: EventEnvelope<EventType>[] = [];
    for (let j = at; j < lane.length; j += 1) {
      const parsed = parse(lane[j]!);
      if (!parsed.ok || !batchHandlers[parsed.event.type] || this.deps.topicOf(parsed.event.type) !== topic) break;
      if (events.length && parsed.event.type !== events[0]!.type) break;
      indexes.push(lane[j]!);
      events.push(parsed.event);
    }
    return indexes.length ? { indexes, events } : undefined;
  }

  /** Runs a batch handler (outages retried); on any other failure, each event alone through `process`. */
  private async processRun(topic: string, partition: number, messages: KafkaMessage[], events: EventEnvelope<EventType>[],
    heartbeat: () => Promise<void>, parsed: ParseResult[]) {
    const log = this.deps.log.child({ topic, partition, offsets: `${messages[0]!.offset}-${messages.at(-1)!.offset}`, group: this.groupId });
    const handler = this.opts.batchHandlers![events[0]!.type] as BatchEventHandler<EventType>;
    try {
      await this.withInfraRetry(() => handler(events, { log }), log);
    } catch (err) {
      if (this.stopping) throw err; // leave the offsets unresolved: redelivered after restart
      log.warn({ err, events: events.length }, 'batch handler failed; handling the events one by one');
      for (const [i, m] of messages.entries()) {
        await this.process(topic, partition, m, parsed[i]);
        await heartbeat();
      }
    }
  }

  private async process(topic: string, partition: number, message: KafkaMessage, parsed: ParseResult = parseEvent(message.value)): Promise<void> {
    const log = this.deps.log.child({ topic, partition, offset: message.offset, group: this.groupId });
    if (!parsed.ok) {
      await this.deadLetter(topic, partition, message, parsed.reason, 0, log);
      return;
    }
    const event = parsed.event;
    const handler = this.opts.handlers[event.type] as EventHandler<EventType> | undefined;
    if (!handler || this.deps.topicOf(event.type) !== topic) {
      await this.deadLetter(topic, partition, message, `event type ${event.type} does not belong on ${topic}`, 0, log);
      return;
    }
    const dedupe = (this.opts.dedupe ?? true) && !this.opts.idempotent?.includes(event.type);
    const recordId = `${this.groupId}:${event.id}`;
    if (dedupe && await this.withInfraRetry(() => this.deps.processed.findOne({ _id: recordId as never }, { projection: { _id: 1 } }), log)) {
      log.debug({ eventId: event.id }, 'duplicate event skipped');
      return;
    }
    let outcome: 'processed' | 'dead-lettered' = 'processed';
    let outages = 0;
    for (let attempt = 1; ; attempt += 1) {
      try {
        await handler(event, { topic, partition, offset: message.offset, attempt, log });
        break;
      } catch (err) {
        if (this.stopping) throw err; // leave the offset unresolved: redelivered after restart
        if (isTransient(err)) {
          outages += 1;
          log.warn({ err, outages }, 'handler hit an infrastructure outage; retrying');
          await sleep(Math.min(this.backoffMs * 2 ** Math.min(outages, 6), 10_000));
          attempt -= 1; // outages do not count against the message
          continue;
        }
        const poison = err instanceof PoisonMessageError;
        if (poison || attempt >= this.maxAttempts) {
          await this.deadLetter(topic, partition, message, (err as Error).message || String(err), attempt, log);
          outcome = 'dead-lettered';
          break;
        }
        log.warn({ err, attempt, eventId: event.id }, 'handler failed; retrying');
        await sleep(this.backoffMs * 2 ** (attempt - 1));
      }
    }
    if (dedupe) {
      await this.withInfraRetry(() => this.deps.processed.insertOne({
        _id: recordId as never, group: this.groupId, eventId: event.id, type: event.type, outcome, at: new Date(),
      }).catch((err: { code?: number }) => { if (err.code !== 11000) throw err; }), log);
    }
  }

  private async withInfraRetry<T>(fn: () => Promise<T>, log: FastifyBaseLogger): Promise<T> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await fn();
      } catch (err) {
        if (!isTransient(err) || this.stopping) throw err;
        log.warn({ err, attempt }, 'database unavailable; retrying');
        await sleep(Math.min(this.backoffMs * 2 ** Math.min(attempt, 6), 10_000));
      }
    }
  }

  private async deadLetter(topic: string, partition: number, message: KafkaMessage, reason: string, attempts: number, log: FastifyBaseLogger) {
    log.warn({ reason, attempts }, 'message dead-lettered');
    const { value, headers } = deadLetterCopy(message);
    await this.deps.producer.send({
      topic: deadLetterTopicFor(topic),
      acks: -1,
      messages: [{
        key: message.key,
        value,
        headers: {
          ...headers,
          [DLQ_HEADERS.reason]: reason.slice(0, 1000),
          [DLQ_HEADERS.attempts]: String(attempts),
          [DLQ_HEADERS.sourceTopic]: topic,
          [DLQ_HEADERS.sourcePartition]: String(partition),
          [DLQ_HEADERS.sourceOffset]: message.offset,
          [DLQ_HEADERS.consumerGroup]: this.groupId,
          [DLQ_HEADERS.at]: new Date().toISOString(),
        },
      }],
    });
  }
}

/** Bytes of an original message's value a dead letter carries at most (256 KiB). */
export const DLQ_MAX_VALUE_BYTES = 256 * 1024;
/** Bytes of an original message's headers a dead letter carries at most (16 KiB); more are left out. */
export const DLQ_MAX_HEADER_BYTES = 16 * 1024;

/**
 * What a dead letter carries of the original message: its value, cut to `DLQ_MAX_VALUE_BYTES` (then
 * with the original size and SHA-256 in `DLQ_HEADERS.valueBytes`/`valueSha256`), and its headers
 * unless they exceed `DLQ_MAX_HEADER_BYTES` (then only their count, `DLQ_HEADERS.headersDropped`).
 * A message the broker took compressed can be over its size limit once copied uncompressed; the
 * broker then refused the dead letter for good, and the partition stopped at the message.
 */
export function deadLetterCopy(message: Pick<KafkaMessage, 'value' | 'headers'>): { value: Buffer | null; headers: Record<string, string> } {
  const headers: Record<string, string> = {};
  const original = Object.entries(message.headers ?? {}).filter(([, v]) => v !== undefined);
  const headerBytes = original.reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(String(v)), 0);
  if (headerBytes <= DLQ_MAX_HEADER_BYTES) for (const [k, v] of original) headers[k] = String(v);
  else headers[DLQ_HEADERS.headersDropped] = String(original.length);
  const value = message.value;
  if (!value || value.length <= DLQ_MAX_VALUE_BYTES) return { value, headers };
  headers[DLQ_HEADERS.valueBytes] = String(value.length);
  headers[DLQ_HEADERS.valueSha256] = createHash('sha256').update(value).digest('hex');
  return { value: value.subarray(0, DLQ_MAX_VALUE_BYTES), headers };
}
