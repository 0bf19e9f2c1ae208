import type { Channel, EventPayload } from '@pipp/contracts';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { PollingLoop } from '@pipp/service-kit';
import { randomUUID } from 'node:crypto';
import type { Config } from '../config.js';
import { afterSuccess, announceUnreachable, decideReach, nextStep, planChannels, type AnnouncementReason, type DeliveryMode, type RetryPolicy } from '../domain/delivery.js';
import { chunkNewSubjects } from '../domain/audience.js';
import { KIND_CLAUSE, missingElements, renderNotice, type Notice, type NotificationKind } from '../domain/notice.js';
import { DeliveryFailure } from './channels.js';
import type { Notification } from './models.js';

/** What a caller asks to notify (a route, or a consumer of another service's event). */
export interface NotifyInput {
  notificationId?: string;
  kind: NotificationKind;
  title: string;
  body?: string | undefined;
  elements: Record<string, string>;
  channels?: Channel[] | undefined;
  /** Default first-channel. */
  mode?: DeliveryMode | undefined;
  requestedBy: Notification['requestedBy'];
  incidentId?: string | undefined;
  audience: Notification['audience'];
  clause?: string | undefined;
}

/** Result of `notify`: the recorded notification (or the refusal) and how it reaches its audience. */
export type NotifyResult =
  | { ok: true; notification: Notification; created: boolean }
  | { ok: false; missing: string[]; notification?: Notification };

const isDup = (err: unknown) => (err as { code?: number }).code === 11000;

/** Id of an incident's affected-subject chunk number `seq` (0, 1, 2 …). */
const chunkId = (incidentId: string, seq: number) => `${incidentId}:${String(seq).padStart(6, '0')}`;

/** Batch events written per outbox document by the planner (each ≤ FANOUT_BATCH_SIZE subjects). */
const PAGES_PER_WRITE = 20;

declare module 'fastify' {
  interface FastifyInstance {
    notifier: Notifier;
  }
}

/**
 * Notification of subjects (policy 5.4.2, VI, 2.4.2(5); PIPL art. 57), in four stages, none of which
 * holds a request open or a whole audience in memory:
 * 1. `notify` records the notice (refusing an incomplete one), decides one-by-one vs announcement,
 *    publishes the announcement if any, and emits `privacy.notification.fanout-requested` (outbox);
 * 2. the planner pages through the audience (affected-subject list, explicit ids, or the contact
 *    directory) and writes one `fanout_batches` document per page whose outbox carries
 *    `privacy.notification.batch-ready` (≤ FANOUT_BATCH_SIZE subjects);
 * 3. each batch becomes one delivery per subject, with its channel plan from the contact directory
 *    (no channel: `unreachable`);
 * 4. the dispatcher claims due deliveries (a lease, so several instances share the work), renders and
 *    sends them, retries with backoff, falls back to the next channel, and settles the notification;
 *    subjects left unreached lead to an announcement.
 */
/** How often the dispatcher looks for notifications left delivering with nothing pending (ms). */
const STUCK_CHECK_MS = 60_000;

export class Notifier {
  private readonly retry: RetryPolicy;
  private readonly noticeCache = new Map<string, { notice: Notice; at: number }>();
  private readonly dispatcher: PollingLoop;
  /** When the last pass looked for notifications left delivering with nothing pending (ms). */
  private settledStuckAt = 0;

  constructor(private readonly app: FastifyInstance, private readonly config: Config, private readonly log: FastifyBaseLogger) {
    this.retry = { maxAttemptsPerChannel: config.DELIVERY_MAX_ATTEMPTS, baseDelayMs: config.DELIVERY_RETRY_BASE_MS, maxDelayMs: config.DELIVERY_RETRY_MAX_MS };
    this.dispatcher = new PollingLoop({
      intervalMs: config.DISPATCH_POLL_MS,
      pass: async () => {
        while (!this.dispatcher.stopped && await this.dispatchOnce() > 0) { /* keep going while there is work */ }
        if (Date.now() - this.settledStuckAt >= STUCK_CHECK_MS) {
          this.settledStuckAt = Date.now();
          await this.settleStuck();
        }
      },
      log,
      what: 'dispatcher pass',
    });
  }

  private get m() {
    return this.app.models;
  }

  /** The notice as subjects receive it: elements plus the contact line (preamble, 2.2). */
  noticeOf(n: Pick<Notification, 'kind' | 'title' | 'body' | 'elements' | 'contact'>): Notice {
    return { kind: n.kind, title: n.title, body: n.body, elements: n.elements ?? {}, contact: n.contact };
  }

  /** Number of subjects an audience covers now. */
  async audienceSize(audience: Notification['audience']): Promise<number> {
    if (audience.kind === 'subjects') return new Set(audience.subjectIds).size;
    if (audience.kind === 'incident') {
      // Maintained by addAffected (reading every chunk would cost a scan of the whole list).
      return (await this.m.incidents.findById(audience.incidentId).select({ affectedCount: 1 }).lean())?.affectedCount ?? 0;
    }
    return this.m.contacts.countDocuments({});
  }

  /**
   * Records a notice and starts reaching its audience. Idempotent by `notificationId` (a redelivered
   * request returns the existing notification). Refuses (ok: false) a notice lacking an element its
   * clause requires; the refusal is recorded when the notice came with an id (from an event).
   */
  async notify(input: NotifyInput): Promise<NotifyResult> {
    const id = input.notificationId ?? `ntf_${randomUUID()}`;
    const existing = await this.m.notifications.findById(id).lean();
    if (existing) return existing.status === 'refused' ? { ok: false, missing: [], notification: existing } : { ok: true, notification: existing, created: false };
    const missing = missingElements(input.kind, input.elements);
    const audience = input.audience.kind === 'subjects' ? { kind: 'subjects' as const, subjectIds: [...new Set(input.audience.subjectIds)] } : input.audience;
    const base = {
      _id: id, kind: input.kind, title: input.title, body: input.body, elements: input.elements, contact: this.config.CONTACT_INFO,
      clause: input.clause ?? KIND_CLAUSE[input.kind], channels: input.channels, mode: input.mode ?? 'first-channel', requestedBy: input.requestedBy, incidentId: input.incidentId,
      audience, announcementIds: [] as string[], createdAt: new Date(),
      plan: { cursor: '', batches: 0, subjects: 0, done: false },
    };
    if (missing.length) {
      if (!input.notificationId) return { ok: false, missing };
      const refused = { ...base, audienceSize: 0, reach: { oneByOne: false, announce: false }, status: 'refused' as const, refusedReason: `missing elements: ${missing.join(', ')}` };
      await this.m.notifications.create(refused).catch((err) => { if (!isDup(err)) throw err; });
      return { ok: false, missing, notification: refused as Notification };
    }
    const audienceSize = await this.audienceSize(audience);
    const reach = decideReach({ kind: input.kind, allSubjects: audience.kind === 'all-subjects', audienceSize, threshold: this.config.ANNOUNCEMENT_THRESHOLD });
    const doc = { ...base, audienceSize, reach, status: (reach.oneByOne ? 'planning' : 'completed') as Notification['status'], ...(reach.oneByOne ? {} : { completedAt: new Date() }) };
    if (reach.announce) {
      const annId = await this.announce({ notification: doc as Notification, reason: reach.reason ?? 'operator', publishedBy: input.requestedBy.actor ?? input.requestedBy.service });
      doc.announcementIds = [annId];
    }
    const entries = reach.oneByOne ? [this.app.outbox.entry('privacy.notification.fanout-requested', { payload: { notificationId: id }, correlationId: id })] : [];
    try {
      await this.app.outbox.insert(this.m.notifications, doc, entries);
    } catch (err) {
      if (!isDup(err)) throw err;
      const again = await this.m.notifications.findById(id).lean();
      return { ok: true, notification: again!, created: false };
    }
    if (input.incidentId) {
      await this.m.incidents.updateOne({ _id: input.incidentId }, {
        $addToSet: { notificationIds: id, announcementIds: { $each: doc.announcementIds } },
        $push: { timeline: { at: new Date(), by: input.requestedBy.actor ?? input.requestedBy.service, role: input.requestedBy.role ?? 'service', kind: 'notified', text: `notification ${id}: ${audienceSize} subject(s)${reach.announce ? `, announcement (${reach.reason})` : ''}` } },
      });
    }
    return { ok: true, notification: doc as Notification, created: true };
  }

  /**
   * Publishes a public announcement of a notice (policy 5.4.2: when one-by-one notice is impractical).
   * Idempotent per notification and reason. Holds no personal data. Returns its id.
   */
  async announce(input: { notification: Pick<Notification, '_id' | 'kind' | 'title' | 'body' | 'elements' | 'contact' | 'incidentId' | 'audienceSize'>; reason: AnnouncementReason; publishedBy: string }): Promise<string> {
    const n = input.notification;
    const id = `ann_${n._id}_${input.reason}`;
    const publishedAt = new Date();
    const doc = {
      _id: id, kind: n.kind, title: n.title, body: n.body, elements: n.elements, contact: n.contact, reason: input.reason,
      incidentId: n.incidentId, notificationId: n._id, audienceSize: n.audienceSize, publishedAt, publishedBy: input.publishedBy,
    };
    const event = this.app.outbox.entry('privacy.announcement.published', {
      payload: {
        announcementId: id, kind: n.kind, title: n.title, reason: input.reason, publishedAt: publishedAt.toISOString(),
        notificationId: n._id, ...(n.incidentId ? { incidentId: n.incidentId } : {}),
      },
      correlationId: n._id,
    });
    try {
      await this.app.outbox.insert(this.m.announcements, doc, [event]);
    } catch (err) {
      if (!isDup(err)) throw err;
    }
    return id;
  }

  /**
   * Stage 2 (consumer of `privacy.notification.fanout-requested`): pages through the audience from the
   * stored cursor, one `fanout_batches` document (with its batch event) per page, then marks the plan
   * done. Reads the audience as a stream (one affected-subject chunk, or one driver batch, at a time),
   * so memory stays flat. Resumable and idempotent: a batch document's id is its number, so a replay
   * after a crash finds it and moves on (the batch consumer also ignores a batch number seen before).
   */
  async plan(notificationId: string): Promise<void> {
    const n = await this.m.notifications.findById(notificationId).lean();
    if (!n || n.status !== 'planning') return;
    // Resume after the last batch written (its document carries the cursor): the notification itself
    // is written once, at the end, so the planner never races the other writers of that document.
    const last = await this.m.batches.findOne({ notificationId }).sort({ batch: -1 }).select({ batch: 1, cursor: 1, planned: 1 }).lean();
    let batchNo = last?.batch ?? 0;
    let pendingCursor = last?.cursor ?? '';
    let subjects = last?.planned ?? 0;
    // Up to PAGES_PER_WRITE batch events travel in one document's outbox: one write per ≤ 10 000
    // subjects instead of one per batch (FerretDB round trips dominate otherwise).
    let group: { batch: number; ids: string[] }[] = [];
    const flush = async (cursor: string) => {
      if (!group.length) return;
      const entries = group.map((g) => this.app.outbox.entry('privacy.notification.batch-ready', { payload: { notificationId, batch: g.batch, subjectIds: g.ids }, correlationId: notificationId }));
      const count = group.reduce((sum, g) => sum + g.ids.length, 0);
      try {
        await this.app.outbox.insert(this.m.batches, { _id: `${notificationId}:${group[0]!.batch}`, notificationId, batch: batchNo, count, at: new Date(), cursor, planned: subjects }, entries);
      } catch (err) {
        if (!isDup(err)) throw err;
      }
      group = [];
    };
    for await (const { ids, cursor } of this.pages(n, last?.cursor ?? '', this.config.FANOUT_BATCH_SIZE)) {
      batchNo += 1;
      subjects += ids.length;
      group.push({ batch: batchNo, ids });
      if (group.length >= PAGES_PER_WRITE) await flush(cursor);
      else pendingCursor = cursor;
    }
    await flush(pendingCursor);
    await this.m.notifications.updateOne({ _id: notificationId, status: 'planning' }, { $set: { plan: { cursor: '', batches: batchNo, subjects, done: true }, status: 'delivering' } });
    await this.settle(notificationId);
  }

  /**
   * The pages of an audience from `from`, each with the cursor to resume after it:
   * explicit ids → an index; an incident's chunks → `<seq>:<offset>`; the directory → the last id.
   */
  private async *pages(n: Notification, from: string, size: number): AsyncGenerator<{ ids: string[]; cursor: string }> {
    const a = n.audience;
    if (a.kind === 'subjects') {
      for (let i = Number(from || '0'); i < a.subjectIds.length; i += size) {
        yield { ids: a.subjectIds.slice(i, i + size), cursor: String(Math.min(i + size, a.subjectIds.length)) };
      }
      return;
    }
    if (a.kind === 'incident') {
      const [seq0, off0] = (from || '0:0').split(':').map(Number) as [number, number];
      // Chunks are numbered 0, 1, 2 … without gaps: read each by its id (no scan of the others), and
      // read the next one while the pages of the current one are being written (one chunk ahead).
      const read = (seq: number) => {
        const p = this.m.affected.findById(chunkId(a.incidentId, seq)).select({ seq: 1, subjectIds: 1 }).lean().exec();
        p.catch(() => undefined); // handled when awaited; never an unhandled rejection if planning stops early
        return p;
      };
      let offset = off0;
      let next = read(seq0);
      for (;;) {
        const chunk = await next;
        if (!chunk) return;
        next = read(chunk.seq + 1);
        const ids = chunk.subjectIds ?? [];
        for (let i = offset; i < ids.length; i += size) {
          const end = Math.min(i + size, ids.length);
          yield { ids: ids.slice(i, end), cursor: end < ids.length ? `${chunk.seq}:${end}` : `${chunk.seq + 1}:0` };
        }
        offset = 0;
      }
    }
    let page: string[] = [];
    for await (const c of this.m.contacts.find(from ? { _id: { $gt: from } } : {}).sort({ _id: 1 }).select({ _id: 1 }).lean().cursor({ batchSize: size })) {
      page.push(c._id);
      if (page.length === size) {
        yield { ids: page, cursor: page[page.length - 1]! };
        page = [];
      }
    }
    if (page.length) yield { ids: page, cursor: page[page.length - 1]! };
  }

  /**
   * Adds affected subjects to an incident, in chunks of ≤ CHUNK_SIZE ids; ids already recorded are
   * skipped. Returns how many were new and the total. Policy 5.4.2 (who must be notified).
   */
  async addAffected(incidentId: string, ids: readonly string[]): Promise<{ added: number; total: number }> {
    const known = new Set<string>();
    let last: { _id: string; seq: number; size: number } | undefined;
    for await (const c of this.m.affected.find({ incidentId }).sort({ seq: 1 }).select({ seq: 1, subjectIds: 1 }).lean().cursor()) {
      for (const id of c.subjectIds ?? []) known.add(id);
      last = { _id: c._id, seq: c.seq, size: (c.subjectIds ?? []).length };
    }
    const { fresh, intoLast, newChunks } = chunkNewSubjects(ids, known, last?.size ?? 0);
    if (last && intoLast.length) await this.m.affected.updateOne({ _id: last._id }, { $addToSet: { subjectIds: { $each: intoLast } } });
    let seq = last ? last.seq : -1;
    for (const chunk of newChunks) {
      seq += 1;
      await this.m.affected.create({ _id: chunkId(incidentId, seq), incidentId, seq, subjectIds: chunk, pseudonyms: [] });
    }
    const total = known.size + fresh.length;
    await this.m.incidents.updateOne({ _id: incidentId }, { $set: { affectedCount: total } });
    return { added: fresh.length, total };
  }

  /**
   * Stage 3 (consumer of `privacy.notification.batch-ready`): one delivery per subject with its channel
   * plan; subjects without a usable channel are recorded `unreachable`, and for a `general` notice (the
   * only kind no law requires) subjects who withdrew consent to notifications `declined` (policy 2.1.1).
   * Idempotent (delivery ids are `<notification>:<subject>`; a batch number is recorded once).
   */
  async materialize(payload: EventPayload<'privacy.notification.batch-ready'>): Promise<void> {
    const n = await this.m.notifications.findById(payload.notificationId).select({ kind: 1, channels: 1, status: 1, mode: 1 }).lean();
    if (!n || n.status === 'refused') return;
    const batchId = `${payload.notificationId}:${payload.batch}`;
    if (await this.m.batchesDone.exists({ _id: batchId })) return;
    const contacts = await this.m.contacts.find({ _id: { $in: payload.subjectIds } }).lean();
    const byId = new Map(contacts.map((c) => [c._id, c]));
    const declined = n.kind === 'general'
      ? new Set((await this.m.optOuts.find({ _id: { $in: payload.subjectIds }, withdrawn: true }, { _id: 1 }).lean()).map((o) => o._id))
      : new Set<string>();
    const now = new Date();
    const docs = payload.subjectIds.map((subjectId) => {
      const c = byId.get(subjectId);
      const available = Object.entries(c?.channels ?? {}).filter(([, v]) => Boolean(v)).map(([k]) => k as Channel);
      const plan = declined.has(subjectId) ? [] : planChannels(available, n.channels, c?.preferred ?? []);
      return {
        _id: `${payload.notificationId}:${subjectId}`, notificationId: payload.notificationId, subjectId, kind: n.kind, mode: n.mode ?? 'first-channel', plan, channelIndex: 0,
        attemptsOnChannel: 0, retries: 0, fallbacks: 0, status: declined.has(subjectId) ? 'declined' : plan.length ? 'queued' : 'unreachable', nextAttemptAt: now, attempts: [],
        createdAt: now, updatedAt: now,
      };
    });
    const queued = docs.filter((d) => d.status === 'queued').map((d) => ({ _id: d._id, notificationId: d.notificationId, subjectId: d.subjectId, dueAt: now, leaseUntil: new Date(0) }));
    const ignoreDup = (err: unknown) => { if (!isDup(err) && !(err as { writeErrors?: unknown[] }).writeErrors) throw err; };
    // Queue first: a crash between the two leaves queue entries whose delivery the replay writes.
    if (queued.length) await this.m.queue.insertMany(queued, { ordered: false, lean: true }).catch(ignoreDup);
    await this.m.deliveries.insertMany(docs, { ordered: false, lean: true }).catch(ignoreDup);
    await this.m.batchesDone.create({ _id: batchId, notificationId: payload.notificationId, at: new Date() }).catch(ignoreDup);
    if (queued.length) this.kick();
    await this.settle(payload.notificationId);
  }

  /**
   * Settles the notifications still `delivering` once planned (at most 50 a call): one whose pending
   * deliveries went some other way than the dispatcher (before erasures settled what they dropped,
   * such notifications stayed delivering for good) completes. Runs with the dispatcher once a minute.
   */
  async settleStuck(): Promise<void> {
    const open = await this.m.notifications.find({ status: 'delivering', 'plan.done': true }, { _id: 1 }).limit(50).lean();
    for (const n of open) await this.settle(n._id);
  }

  /**
   * Closes a notification once planned, every batch materialized and no delivery pending; then, if
   * subjects were left unreached (no channel, or every channel failed), publishes an announcement for
   * them (policy 5.4.2). Safe to call any time and from any instance.
   */
  async settle(notificationId: string): Promise<void> {
    const n = await this.m.notifications.findById(notificationId).lean();
    if (!n || n.status !== 'delivering' || !n.plan.done) return;
    if (await this.m.batchesDone.countDocuments({ notificationId }) < n.plan.batches) return;
    const pending = await this.m.queue.countDocuments({ notificationId });
    if (pending) return;
    const unreached = await this.m.deliveries.countDocuments({ notificationId, status: { $in: ['failed', 'unreachable'] } });
    // Announce first (idempotent), then complete with the announcement in the same write, so that a
    // completed notification always shows its announcement.
    const announcementIds = [...(n.announcementIds ?? [])];
    let annId: string | undefined;
    if (announceUnreachable(n.kind, n.audience.kind === 'all-subjects', unreached, announcementIds.length > 0)) {
      annId = await this.announce({ notification: n, reason: 'unreachable-subjects', publishedBy: 'incident' });
      announcementIds.push(annId);
    }
    const done = await this.m.notifications.findOneAndUpdate({ _id: notificationId, status: 'delivering' }, { $set: { status: 'completed', completedAt: new Date(), announcementIds } }, { new: true }).select('+_outbox').lean(); // FerretDB: no projection in findAndModify
    if (!done) return;
    await this.m.batches.deleteMany({ notificationId });
    await this.m.batchesDone.deleteMany({ notificationId });
    if (annId && done.incidentId) {
      await this.m.incidents.updateOne({ _id: done.incidentId }, {
        $addToSet: { announcementIds: annId },
        $push: { timeline: { at: new Date(), by: 'incident', role: 'service', kind: 'announced', text: `announcement ${annId}: ${unreached} subject(s) could not be reached one by one` } },
      });
    }
  }

  /** Wakes the dispatcher. */
  kick(): void {
    this.dispatcher.kick();
  }

  start(): void {
    this.dispatcher.start();
  }

  async stop(): Promise<void> {
    await this.dispatcher.stop();
  }

  /**
   * Stage 4: claims up to DISPATCH_CONCURRENCY × 4 due queue entries, sends them DISPATCH_CONCURRENCY
   * at a time, and settles the notifications touched. A claim is an insert of `<entry>@<round>` (unique
   * id: exactly one instance gets it); the entry's `leaseUntil` then hides it from the others' scans. A
   * claim older than the lease (its instance died) is removed, and the entry is claimed again.
   * Returns how many it handled.
   */
  async dispatchOnce(): Promise<number> {
    const now = new Date();
    const leaseMs = this.config.DELIVERY_TIMEOUT_MS * 3 + 5000;
    const due = await this.m.queue.find({ dueAt: { $lte: now }, leaseUntil: { $lte: now } })
      .sort({ dueAt: 1 }).limit(this.config.DISPATCH_CONCURRENCY * 4).select({ _id: 1, round: 1, notificationId: 1 }).lean();
    if (!due.length) return 0;
    const claims = due.map((q) => ({ _id: `${q._id}@${q.round ?? 0}`, queueId: q._id, at: now }));
    let lost = new Set<number>();
    try {
      await this.m.claims.collection.insertMany(claims as never[], { ordered: false });
    } catch (err) {
      const writeErrors = (err as { writeErrors?: { index: number; code?: number }[] | { index: number; code?: number } }).writeErrors;
      const list = Array.isArray(writeErrors) ? writeErrors : writeErrors ? [writeErrors] : [];
      if (!list.length || list.some((e) => e.code !== 11000)) throw err;
      lost = new Set(list.map((e) => e.index));
    }
    const mine = due.filter((_, i) => !lost.has(i));
    // Claims lost to a dead instance: free them once they are older than the lease.
    for (const i of lost) {
      const c = await this.m.claims.findById(claims[i]!._id).lean();
      if (c && c.at.getTime() < now.getTime() - leaseMs) await this.m.claims.deleteOne({ _id: c._id, at: c.at });
    }
    if (!mine.length) return 0;
    await this.m.queue.updateMany({ _id: { $in: mine.map((q) => q._id) } }, { $set: { leaseUntil: new Date(now.getTime() + leaseMs) } });
    const touched = new Set<string>();
    let next = 0;
    const worker = async () => {
      while (next < mine.length && !this.dispatcher.stopped) {
        const q = mine[next++]!;
        touched.add(q.notificationId);
        await this.deliver(q._id, q.round ?? 0).catch((err) => this.log.warn({ err, deliveryId: q._id }, 'delivery bookkeeping failed; the claim will expire and it is retried'));
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.config.DISPATCH_CONCURRENCY, mine.length) }, worker));
    for (const id of touched) await this.settle(id);
    return mine.length;
  }

  private async notice(notificationId: string): Promise<Notice | undefined> {
    const hit = this.noticeCache.get(notificationId);
    if (hit && Date.now() - hit.at < 60_000) return hit.notice;
    const n = await this.m.notifications.findById(notificationId).select({ kind: 1, title: 1, body: 1, elements: 1, contact: 1 }).lean();
    if (!n) return undefined;
    const notice = this.noticeOf(n);
    if (this.noticeCache.size > 100) this.noticeCache.delete(this.noticeCache.keys().next().value!);
    this.noticeCache.set(notificationId, { notice, at: Date.now() });
    return notice;
  }

  /** Sends one delivery on its current channel and records the outcome and what comes next. */
  private async deliver(deliveryId: string, round: number): Promise<void> {
    const d = await this.m.deliveries.findById(deliveryId).lean();
    const done = async () => {
      await this.m.queue.deleteOne({ _id: deliveryId });
      await this.m.claims.deleteMany({ queueId: deliveryId });
    };
    if (!d) return; // not written yet (a batch being replayed): the lease expires and it is tried again
    if (d.status !== 'queued' && d.status !== 'retrying') {
      await done();
      return;
    }
    const channel = d.plan[d.channelIndex];
    const notice = await this.notice(d.notificationId);
    const at = new Date();
    let failure: DeliveryFailure | undefined;
    let ref: string | undefined;
    if (!channel || !notice) {
      failure = new DeliveryFailure(notice ? 'no channel left' : 'notification gone', true);
    } else {
      const contact = await this.m.contacts.findById(d.subjectId).lean();
      const address = contact?.channels?.[channel];
      if (!address) {
        failure = new DeliveryFailure(`no ${channel} address on file any more`, true);
      } else {
        try {
          // renderNotice checks that every element the clause requires is in the text (5.4.2).
          const rendered = renderNotice(notice, channel);
          ref = (await this.app.channels[channel].send(address, rendered, { deliveryId: d._id, notificationId: d.notificationId, subjectId: d.subjectId, kind: d.kind })).ref;
        } catch (err) {
          failure = err instanceof DeliveryFailure ? err : new DeliveryFailure((err as Error).name === 'IncompleteNoticeError' ? (err as Error).message : `${channel}: ${(err as Error).message}`, (err as Error).name === 'IncompleteNoticeError');
        }
      }
    }
    const attempt = { channel: channel ?? 'email', at, ok: !failure, ...(failure ? { error: failure.message.slice(0, 200), permanent: failure.permanent } : {}), ...(ref ? { ref } : {}) };
    // By id only (FerretDB pushes down _id equality; other fields would scan): the queue lease makes
    // this instance the only one working on the delivery.
    const filter = { _id: d._id };
    const reschedule = async (delayMs: number) => {
      await this.m.queue.updateOne({ _id: deliveryId }, { $set: { dueAt: new Date(at.getTime() + delayMs), leaseUntil: new Date(0), round: round + 1 } });
      await this.m.claims.deleteOne({ _id: `${deliveryId}@${round}` });
      if (delayMs === 0) this.dispatcher.kick(); // due at once: one more pass
    };
    const accepted = d.deliveredChannels ?? [];
    if (!failure) {
      const first = accepted.length === 0;
      const after = afterSuccess(d, d.mode ?? 'first-channel');
      if (after.action === 'next') {
        await this.m.deliveries.updateOne(filter, {
          $set: { status: 'retrying', channelIndex: after.channelIndex, attemptsOnChannel: 0, nextAttemptAt: at, updatedAt: at, ...(first ? { deliveredChannel: channel, deliveredAt: at } : {}) },
          $addToSet: { deliveredChannels: channel }, $push: { attempts: attempt },
        });
        await reschedule(0);
        return;
      }
      await this.m.deliveries.updateOne(filter, {
        $set: { status: 'delivered', updatedAt: at, ...(first ? { deliveredChannel: channel, deliveredAt: at } : {}) },
        $addToSet: { deliveredChannels: channel }, $inc: { attemptsOnChannel: 1 }, $push: { attempts: attempt },
      });
      await done();
      return;
    }
    const step = nextStep({ plan: d.plan, channelIndex: d.channelIndex, attemptsOnChannel: d.attemptsOnChannel + 1 }, failure, this.retry);
    if (step.action === 'give-up') {
      // every-channel: delivered if any channel accepted it.
      await this.m.deliveries.updateOne(filter, { $set: { status: accepted.length ? 'delivered' : 'failed', updatedAt: at }, $inc: { attemptsOnChannel: 1 }, $push: { attempts: attempt } });
      await done();
      return;
    }
    await this.m.deliveries.updateOne(filter, {
      $set: {
        status: 'retrying', channelIndex: step.channelIndex, attemptsOnChannel: step.attemptsOnChannel,
        nextAttemptAt: new Date(at.getTime() + step.delayMs), updatedAt: at,
      },
      $inc: { [step.action === 'retry' ? 'retries' : 'fallbacks']: 1 },
      $push: { attempts: attempt },
    });
    await reschedule(step.delayMs);
  }
}

/** Decorates `app.notifier` and runs its dispatcher while the app is up. */
export const notifierPlugin = fp(async function notifier(app: FastifyInstance, opts: { config: Config }) {
  const n = new Notifier(app, opts.config, app.log.child({ component: 'notifier' }));
  app.decorate('notifier', n);
  app.addHook('onReady', async () => n.start());
  app.addHook('preClose', async () => n.stop());
}, { name: 'incident-notifier', dependencies: ['incident-models', 'incident-channels'] });
