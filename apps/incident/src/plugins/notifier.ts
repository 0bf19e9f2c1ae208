import type { Channel, EventPayload } from '@pipp/contracts';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { randomUUID } from 'node:crypto';
import type { Config } from '../config.js';
import { announceUnreachable, decideReach, nextStep, planChannels, type AnnouncementReason, type RetryPolicy } from '../domain/delivery.js';
import { KIND_CLAUSE, missingElements, renderNotice, type Notice, type NotificationKind } from '../domain/notice.js';
import { DeliveryFailure } from './channels.js';
import type { Delivery, Notification } from './models.js';

/** What a caller asks to notify (a route, or a consumer of another service's event). */
export interface NotifyInput {
  notificationId?: string;
  kind: NotificationKind;
  title: string;
  body?: string | undefined;
  elements: Record<string, string>;
  channels?: Channel[] | undefined;
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
export class Notifier {
  private readonly retry: RetryPolicy;
  private readonly noticeCache = new Map<string, { notice: Notice; at: number }>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = true;
  private readonly owner = randomUUID();

  constructor(private readonly app: FastifyInstance, private readonly config: Config, private readonly log: FastifyBaseLogger) {
    this.retry = { maxAttemptsPerChannel: config.DELIVERY_MAX_ATTEMPTS, baseDelayMs: config.DELIVERY_RETRY_BASE_MS, maxDelayMs: config.DELIVERY_RETRY_MAX_MS };
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
    if (audience.kind === 'incident') return this.m.affected.countDocuments({ incidentId: audience.incidentId });
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
      clause: input.clause ?? KIND_CLAUSE[input.kind], channels: input.channels, requestedBy: input.requestedBy, incidentId: input.incidentId,
      audience, announcementIds: [] as string[], createdAt: new Date(),
      plan: { cursor: '', batches: 0, subjects: 0, done: false, processed: [] },
      progress: { materialized: 0, delivered: 0, failed: 0, unreachable: 0, retries: 0, fallbacks: 0 },
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
   * done. Resumable and idempotent: a batch document's id is its number, so a replay after a crash
   * finds it and moves on.
   */
  async plan(notificationId: string): Promise<void> {
    const n = await this.m.notifications.findById(notificationId).lean();
    if (!n || n.status !== 'planning') return;
    let cursor = n.plan.cursor;
    let batchNo = n.plan.batches;
    let subjects = n.plan.subjects;
    const size = this.config.FANOUT_BATCH_SIZE;
    for (;;) {
      const ids = await this.page(n, cursor, size);
      if (!ids.length) break;
      batchNo += 1;
      const last = ids[ids.length - 1]!;
      const pageCursor = n.audience.kind === 'subjects' ? String(Number(cursor || '0') + ids.length) : last;
      const entry = this.app.outbox.entry('privacy.notification.batch-ready', { payload: { notificationId, batch: batchNo, subjectIds: ids }, correlationId: notificationId });
      try {
        await this.app.outbox.insert(this.m.batches, { _id: `${notificationId}:${batchNo}`, notificationId, batch: batchNo, count: ids.length, at: new Date() }, [entry]);
      } catch (err) {
        if (!isDup(err)) throw err;
      }
      cursor = pageCursor;
      subjects += ids.length;
      await this.m.notifications.updateOne({ _id: notificationId }, { $set: { 'plan.cursor': cursor, 'plan.batches': batchNo, 'plan.subjects': subjects } });
    }
    // The cursor (a subject id) is not needed any more once the plan is done.
    await this.m.notifications.updateOne({ _id: notificationId, status: 'planning' }, { $set: { 'plan.done': true, 'plan.cursor': '', status: 'delivering' } });
    await this.settle(notificationId);
  }

  /** One page of an audience after `cursor` (an index for explicit lists, the last id otherwise). */
  private async page(n: Notification, cursor: string, size: number): Promise<string[]> {
    const a = n.audience;
    if (a.kind === 'subjects') {
      const from = Number(cursor || '0');
      return a.subjectIds.slice(from, from + size);
    }
    if (a.kind === 'incident') {
      const prefix = `${a.incidentId}:`;
      const rows = await this.m.affected.find({ incidentId: a.incidentId, pseudonymous: { $ne: true }, _id: { $gt: cursor ? `${prefix}${cursor}` : prefix } })
        .sort({ _id: 1 }).limit(size).select({ subjectId: 1 }).lean();
      return rows.map((r) => r.subjectId);
    }
    const rows = await this.m.contacts.find(cursor ? { _id: { $gt: cursor } } : {}).sort({ _id: 1 }).limit(size).select({ _id: 1 }).lean();
    return rows.map((r) => r._id);
  }

  /**
   * Stage 3 (consumer of `privacy.notification.batch-ready`): one delivery per subject with its channel
   * plan; subjects without a usable channel are recorded `unreachable`. Idempotent (delivery ids are
   * `<notification>:<subject>`; a batch number is recorded once).
   */
  async materialize(payload: EventPayload<'privacy.notification.batch-ready'>): Promise<void> {
    const n = await this.m.notifications.findById(payload.notificationId).select({ kind: 1, channels: 1, plan: 1, status: 1 }).lean();
    if (!n || n.status === 'refused') return;
    if (n.plan.processed?.includes(payload.batch)) return;
    const contacts = await this.m.contacts.find({ _id: { $in: payload.subjectIds } }).lean();
    const byId = new Map(contacts.map((c) => [c._id, c]));
    const now = new Date();
    let unreachable = 0;
    const docs = payload.subjectIds.map((subjectId) => {
      const c = byId.get(subjectId);
      const available = Object.entries(c?.channels ?? {}).filter(([, v]) => Boolean(v)).map(([k]) => k as Channel);
      const plan = planChannels(available, n.channels, c?.preferred ?? []);
      if (!plan.length) unreachable += 1;
      return {
        _id: `${payload.notificationId}:${subjectId}`, notificationId: payload.notificationId, subjectId, kind: n.kind, plan, channelIndex: 0,
        attemptsOnChannel: 0, status: plan.length ? 'queued' : 'unreachable', nextAttemptAt: now, leaseUntil: new Date(0), attempts: [],
        createdAt: now, updatedAt: now,
      };
    });
    let inserted = docs.length;
    try {
      await this.m.deliveries.insertMany(docs, { ordered: false, lean: true });
    } catch (err) {
      if (!isDup(err) && !(err as { writeErrors?: unknown[] }).writeErrors) throw err;
      inserted = (err as { insertedDocs?: unknown[]; result?: { insertedCount?: number } }).result?.insertedCount ?? 0;
      unreachable = 0; // recounted when settling
    }
    await this.m.notifications.updateOne({ _id: payload.notificationId }, {
      $addToSet: { 'plan.processed': payload.batch },
      $inc: { 'progress.materialized': inserted, 'progress.unreachable': unreachable },
    });
    // The batch's event was relayed before we could consume it: its record is no longer needed.
    await this.m.batches.deleteOne({ _id: `${payload.notificationId}:${payload.batch}` });
    if (docs.length > unreachable) this.kick();
    await this.settle(payload.notificationId);
  }

  /**
   * Closes a notification once planned, every batch materialized and no delivery pending; then, if
   * subjects were left unreached (no channel, or every channel failed), publishes an announcement for
   * them (policy 5.4.2). Safe to call any time and from any instance.
   */
  async settle(notificationId: string): Promise<void> {
    const n = await this.m.notifications.findById(notificationId).lean();
    if (!n || n.status !== 'delivering' || !n.plan.done) return;
    if ((n.plan.processed?.length ?? 0) < n.plan.batches) return;
    const pending = await this.m.deliveries.countDocuments({ notificationId, status: { $in: ['queued', 'retrying'] } });
    if (pending) return;
    const unreached = await this.m.deliveries.countDocuments({ notificationId, status: { $in: ['failed', 'unreachable'] } });
    const done = await this.m.notifications.findOneAndUpdate({ _id: notificationId, status: 'delivering' }, { $set: { status: 'completed', completedAt: new Date() } }, { new: true }).select('+_outbox').lean(); // FerretDB: no projection in findAndModify
    if (!done) return;
    const alreadyAnnounced = (done.announcementIds ?? []).length > 0;
    if (announceUnreachable(done.kind, unreached, alreadyAnnounced)) {
      const annId = await this.announce({ notification: done, reason: 'unreachable-subjects', publishedBy: 'incident' });
      await this.m.notifications.updateOne({ _id: notificationId }, { $addToSet: { announcementIds: annId } });
      if (done.incidentId) {
        await this.m.incidents.updateOne({ _id: done.incidentId }, {
          $addToSet: { announcementIds: annId },
          $push: { timeline: { at: new Date(), by: 'incident', role: 'service', kind: 'announced', text: `announcement ${annId}: ${unreached} subject(s) could not be reached one by one` } },
        });
      }
    }
  }

  /** Wakes the dispatcher. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) { this.again = true; return; }
    this.running = this.loop().finally(() => { this.running = undefined; });
  }

  start(): void {
    this.stopped = false;
    const tick = () => {
      this.kick();
      this.timer = setTimeout(tick, this.config.DISPATCH_POLL_MS);
      this.timer.unref();
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private async loop() {
    do {
      this.again = false;
      try {
        while (!this.stopped && await this.dispatchOnce() > 0) { /* keep going while there is work */ }
      } catch (err) {
        this.log.warn({ err }, 'dispatcher pass failed; will retry');
        return;
      }
    } while (this.again && !this.stopped);
  }

  /**
   * Stage 4: claims up to DISPATCH_CONCURRENCY × 4 due deliveries with a lease (so instances share the
   * work and a crashed instance's claims expire), sends them DISPATCH_CONCURRENCY at a time, and
   * settles the notifications touched. Returns how many it handled.
   */
  async dispatchOnce(): Promise<number> {
    const now = new Date();
    const due = await this.m.deliveries.find({ status: { $in: ['queued', 'retrying'] }, nextAttemptAt: { $lte: now } })
      .sort({ nextAttemptAt: 1 }).limit(this.config.DISPATCH_CONCURRENCY * 4).select({ _id: 1, leaseUntil: 1 }).lean();
    const free = due.filter((d) => d.leaseUntil <= now).map((d) => d._id);
    if (!free.length) return 0;
    const leaseMs = this.config.DELIVERY_TIMEOUT_MS * 3 + 5000;
    const token = `${this.owner}:${randomUUID()}`;
    await this.m.deliveries.updateMany({ _id: { $in: free }, leaseUntil: { $lte: now } }, { $set: { leaseUntil: new Date(now.getTime() + leaseMs), leaseOwner: token } });
    const claimed = await this.m.deliveries.find({ _id: { $in: free }, leaseOwner: token }).lean();
    const touched = new Set<string>();
    let next = 0;
    const worker = async () => {
      while (next < claimed.length && !this.stopped) {
        const d = claimed[next++]!;
        touched.add(d.notificationId);
        await this.deliver(d).catch((err) => this.log.warn({ err, deliveryId: d._id }, 'delivery bookkeeping failed; the lease will expire and it is retried'));
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.config.DISPATCH_CONCURRENCY, claimed.length) }, worker));
    for (const id of touched) await this.settle(id);
    return claimed.length;
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
  private async deliver(d: Delivery): Promise<void> {
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
    const filter = { _id: d._id, leaseOwner: d.leaseOwner };
    if (!failure) {
      await this.m.deliveries.updateOne(filter, {
        $set: { status: 'delivered', deliveredChannel: channel, deliveredAt: at, updatedAt: at, leaseUntil: new Date(0) },
        $inc: { attemptsOnChannel: 1 }, $push: { attempts: attempt },
      });
      await this.m.notifications.updateOne({ _id: d.notificationId }, { $inc: { 'progress.delivered': 1, [`progress.byChannel.${channel}`]: 1 } });
      return;
    }
    const step = nextStep({ plan: d.plan, channelIndex: d.channelIndex, attemptsOnChannel: d.attemptsOnChannel + 1 }, failure, this.retry);
    if (step.action === 'give-up') {
      await this.m.deliveries.updateOne(filter, { $set: { status: 'failed', updatedAt: at, leaseUntil: new Date(0) }, $inc: { attemptsOnChannel: 1 }, $push: { attempts: attempt } });
      await this.m.notifications.updateOne({ _id: d.notificationId }, { $inc: { 'progress.failed': 1 } });
      return;
    }
    await this.m.deliveries.updateOne(filter, {
      $set: {
        status: 'retrying', channelIndex: step.channelIndex, attemptsOnChannel: step.attemptsOnChannel,
        nextAttemptAt: new Date(at.getTime() + step.delayMs), updatedAt: at, leaseUntil: new Date(0),
      },
      $push: { attempts: attempt },
    });
    await this.m.notifications.updateOne({ _id: d.notificationId }, { $inc: { [step.action === 'retry' ? 'progress.retries' : 'progress.fallbacks']: 1 } });
    if (step.delayMs === 0) this.again = true;
  }
}

/** Decorates `app.notifier` and runs its dispatcher while the app is up. */
export const notifierPlugin = fp(async function notifier(app: FastifyInstance, opts: { config: Config }) {
  const n = new Notifier(app, opts.config, app.log.child({ component: 'notifier' }));
  app.decorate('notifier', n);
  app.addHook('onReady', async () => n.start());
  app.addHook('preClose', async () => n.stop());
}, { name: 'incident-notifier', dependencies: ['incident-models', 'incident-channels'] });
