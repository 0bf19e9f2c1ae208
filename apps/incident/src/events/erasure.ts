import type { DataCategory, EventPayload, LegalBasis } from '@pipp/contracts';
import { leavingHeld } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import { planErasure, pseudonymOf } from '../domain/erasure.js';

type Counts = { erased: number; anonymized: number; kept: number };
type Kept = { category: DataCategory; legalBasis: LegalBasis; purgeAt: string; reason: string };

/**
 * Removes a subject's pending deliveries from the queue, with their claims, then settles their
 * notifications: one whose last pending delivery this was completes now (the delivery loop, which
 * settles the notifications it touches, will not see these entries again).
 */
async function dropQueued(app: FastifyInstance, subjectId: string) {
  const queued = await app.models.queue.find({ subjectId }).select({ _id: 1, notificationId: 1 }).lean();
  if (!queued.length) return;
  const ids = queued.map((q) => q._id);
  await app.models.claims.deleteMany({ queueId: { $in: ids } });
  await app.models.queue.deleteMany({ _id: { $in: ids } });
  for (const notificationId of new Set(queued.map((q) => q.notificationId))) await app.notifier.settle(notificationId);
}

/**
 * Applies the incident service's part of an erasure (policy 4.1, 4.2; PIPL art. 47) as planned by
 * `planErasure`; every step is idempotent (a second run finds nothing left to change). Records a
 * tombstone first so that a late contact event cannot bring the subject's contact details back.
 */
export async function eraseSubject(app: FastifyInstance, config: Config, p: EventPayload<'privacy.erasure.requested'>): Promise<{ counts: Counts; kept: Kept[] }> {
  const m = app.models;
  const now = new Date();
  const counts: Counts = { erased: 0, anonymized: 0, kept: 0 };
  const kept: Kept[] = [];
  const subjectId = p.subjectId;
  const plan = planErasure({ scope: p.scope, legalHolds: p.legalHolds, now, incidentRecordDays: config.INCIDENT_RECORD_RETENTION_DAYS });
  const pseudonym = pseudonymOf(subjectId, config.INCIDENT_PSEUDONYM_KEY);
  // The tombstone first: records created from now on see it and are not kept (storeUnlessErased).
  if (p.scope.kind === 'account') await m.erased.updateOne({ _id: pseudonym }, { $setOnInsert: { _id: pseudonym, at: now, requestId: p.requestId } }, { upsert: true });
  for (const item of plan) {
    if (item.holding === 'contacts') {
      if (item.action === 'isolate') {
        // Moved out of the directory (no notice reaches them any more) into isolated storage, with the
        // hold's basis and purge date; a run again finds them there and reports the same.
        const channels = item.channels === 'all' ? [] : item.channels ?? [];
        const live = await m.contacts.findById(subjectId).lean();
        const held = Object.fromEntries(channels.flatMap((c) => (live?.channels[c] ? [[c, live.channels[c]]] : [])));
        if (Object.keys(held).length) {
          await m.isolatedContacts.updateOne({ _id: `${subjectId}:${item.category!}` }, { $set: {
            subjectId, category: item.category!, legalBasis: item.legalBasis!, purgeAt: item.purgeAt!, reason: item.reason!, requestId: p.requestId, isolatedAt: now,
            ...Object.fromEntries(Object.entries(held).map(([c, v]) => [`channels.${c}`, v])),
          } }, { upsert: true });
          await m.contacts.updateOne({ _id: subjectId }, { $unset: Object.fromEntries(channels.map((c) => [`channels.${c}`, 1])), $pullAll: { preferred: channels } });
        }
        if (await m.isolatedContacts.exists({ _id: `${subjectId}:${item.category!}` })) {
          counts.kept += 1;
          kept.push({ category: item.category!, legalBasis: item.legalBasis!, purgeAt: item.purgeAt!.toISOString(), reason: item.reason! });
        }
        continue;
      }
      if (item.channels === 'all') {
        await m.erased.updateOne({ _id: pseudonym }, { $setOnInsert: { _id: pseudonym, at: now, requestId: p.requestId } }, { upsert: true });
        counts.erased += (await m.contacts.deleteOne({ _id: subjectId })).deletedCount;
        await m.optOuts.deleteOne({ _id: subjectId });
        counts.erased += (await m.letters.deleteMany({ subjectId })).deletedCount;
        counts.erased += (await m.sink.deleteMany({ subjectId })).deletedCount;
        // Pending deliveries cannot reach anyone any more.
        await m.deliveries.updateMany({ subjectId, status: { $in: ['queued', 'retrying'] } }, { $set: { status: 'unreachable', updatedAt: now } });
        await dropQueued(app, subjectId);
      } else if (item.channels?.length) {
        // Some channels only: the others stay usable; a pending delivery on an erased one falls back.
        const unset = Object.fromEntries(item.channels.map((c) => [`channels.${c}`, 1]));
        counts.erased += (await m.contacts.updateOne({ _id: subjectId }, { $unset: unset, $pullAll: { preferred: item.channels } })).modifiedCount;
        if (item.channels.includes('letter')) counts.erased += (await m.letters.deleteMany({ subjectId })).deletedCount;
        counts.erased += (await m.sink.deleteMany({ subjectId, channel: { $in: item.channels } })).deletedCount;
      }
    } else if (item.holding === 'reports') {
      if (item.action === 'isolate') {
        await m.reports.updateMany({ subjectId, isolated: { $exists: false } }, { $set: { isolated: { legalBasis: item.legalBasis!, purgeAt: item.purgeAt! } } });
        // Counted as they are now, so a run after one that failed half-way reports them too.
        const isolated = await m.reports.countDocuments({ subjectId, isolated: { $exists: true } });
        counts.kept += isolated;
        if (isolated) kept.push({ category: 'support-report', legalBasis: item.legalBasis!, purgeAt: item.purgeAt!.toISOString(), reason: item.reason! });
        continue;
      }
      const r = await m.reports.updateMany({ subjectId }, {
        $set: { subjectId: null, title: '[anonymized]', text: '', replies: [], anonymized: true, updatedAt: now },
        $unset: { resolution: 1, sourceReportId: 1 },
      });
      counts.anonymized += r.modifiedCount;
    } else if (item.action === 'isolate') {
      await m.deliveries.updateMany({ subjectId, keptUntil: { $exists: false } }, { $set: { keptUntil: item.purgeAt!, pseudonymous: false } });
      const isolated = await m.deliveries.countDocuments({ subjectId, keptUntil: { $exists: true } });
      counts.kept += isolated;
      if (isolated) kept.push({ category: 'notification-record', legalBasis: item.legalBasis!, purgeAt: item.purgeAt!.toISOString(), reason: item.reason! });
    } else if (item.action === 'erase') {
      counts.erased += (await m.deliveries.deleteMany({ subjectId, kind: { $ne: 'security-incident' } })).deletedCount;
      // Notices addressed to this subject alone (sign-in alerts, acknowledgments) are personal texts:
      // their content goes; notices to several subjects only lose the subject from their list.
      const touched = (await m.notifications.find({ 'audience.subjectIds': subjectId, status: 'delivering' }, { _id: 1 }).lean()).map((n) => n._id);
      const personal = await m.notifications.updateMany({ 'audience.subjectIds': [subjectId] }, {
        $set: { title: '[erased]', body: '', elements: {}, 'audience.subjectIds': [] },
      });
      counts.erased += personal.modifiedCount;
      await m.notifications.updateMany({ 'audience.subjectIds': subjectId }, { $pullAll: { 'audience.subjectIds': [subjectId] } });
      // Settled again: on FerretDB a completion written meanwhile by the dispatcher (settling the
      // delivery dropped above) can be lost under these updates of the same document, which left the
      // notification "delivering" until the once-a-minute check (a flaky test).
      for (const id of touched) await app.notifier.settle(id);
    } else {
      // pseudonymize-keep: incident deliveries and affected-subject entries keep a pseudonym only.
      let n = 0;
      await dropQueued(app, subjectId);
      for (const d of await m.deliveries.find({ subjectId, kind: 'security-incident' }).lean()) {
        const _id = `${d.notificationId}:${pseudonym}`;
        await m.deliveries.updateOne({ _id }, { $setOnInsert: {
          ...d, _id, subjectId: pseudonym, pseudonymous: true, keptUntil: item.purgeAt!,
          attempts: d.attempts.map((a) => ({ channel: a.channel, at: a.at, ok: a.ok })),
          status: d.status === 'queued' || d.status === 'retrying' ? 'unreachable' : d.status,
        } }, { upsert: true });
        await m.deliveries.deleteOne({ _id: d._id });
        n += 1;
      }
      const chunks = await m.affected.updateMany({ subjectIds: subjectId }, {
        $pullAll: { subjectIds: [subjectId] }, $addToSet: { pseudonyms: pseudonym }, $set: { keptUntil: item.purgeAt! },
      });
      n += chunks.modifiedCount;
      // Nothing moved: perhaps a run that failed half-way moved it already; what is kept is reported.
      if (!n) n = (await m.deliveries.countDocuments({ subjectId: pseudonym, kind: 'security-incident' })) + (await m.affected.countDocuments({ pseudonyms: pseudonym }));
      counts.kept += n;
      if (n) kept.push({ category: 'notification-record', legalBasis: item.legalBasis!, purgeAt: item.purgeAt!.toISOString(), reason: item.reason! });
    }
  }
  // Audit records stay (they are the evidence of who did what) but name the subject by pseudonym only.
  await m.audit.updateMany({ subjectId }, { $set: { subjectId: pseudonym } });
  await m.audit.updateMany({ actor: subjectId, role: 'subject' }, { $set: { actor: pseudonym } });
  return { counts, kept };
}

/**
 * Erasure participant (policy 4.1, 4.2, 2.4.2(5); DESIGN.md saga): on `privacy.erasure.requested`
 * erase what we hold, then answer `privacy.erasure.participant-replied` through the outbox. The first
 * answer is stored (`erasure_receipts`) and repeated for every redelivery (higher `attempt`), after
 * running the (idempotent) erasure again to catch anything that arrived meanwhile.
 * On `privacy.erasure.completed` the erasure is applied once more, in case a late event recreated
 * something; no confirmation is sent to the subject — by then their contact details are gone by
 * design (the subject follows the request's progress in the retention service).
 * On `privacy.retention.sweep-requested`: expired reports and delivery records are erased or
 * anonymized in batches, and pseudonymous records past their keep-until date are purged (policy 5.1);
 * what legal holds cover stays (policy 4.1: those the request names and those incident was told of).
 */
export function registerErasureConsumers(app: FastifyInstance, config: Config) {
  const m = app.models;
  app.kafka.consume({
    name: 'erasure',
    // An erasure is answered from its receipt per request id, after running the idempotent erasure again.
    idempotent: ['privacy.erasure.requested'],
    handlers: {
      'privacy.erasure.requested': async (event) => {
        const p = event.payload;
        if (p.participants && !p.participants.includes('incident')) return;
        const reply = (counts: Counts, kept: Kept[]) => app.outbox.entry('privacy.erasure.participant-replied', {
          subject: p.subjectId, correlationId: event.correlationId,
          payload: { requestId: p.requestId, subjectId: p.subjectId, participant: 'incident', attempt: p.attempt, status: 'completed', counts, kept },
        });
        const receipt = await m.erasures.findById(p.requestId).lean();
        if (!receipt) {
          const { counts, kept } = await eraseSubject(app, config, p);
          try {
            await app.outbox.insert(m.erasures, { _id: p.requestId, subjectId: pseudonymOf(p.subjectId, config.INCIDENT_PSEUDONYM_KEY), counts, kept, repliedAttempts: [p.attempt], at: new Date() }, [reply(counts, kept)]);
            return;
          } catch (err) {
            if ((err as { code?: number }).code !== 11000) throw err;
          }
        }
        const stored = (await m.erasures.findById(p.requestId).lean())!;
        if (stored.repliedAttempts.includes(p.attempt)) return;
        await eraseSubject(app, config, p);
        await app.outbox.update(m.erasures, { _id: p.requestId, repliedAttempts: { $ne: p.attempt } }, { $addToSet: { repliedAttempts: p.attempt } },
          [reply(stored.counts, stored.kept as Kept[])]);
      },

      'privacy.erasure.completed': async (event) => {
        const p = event.payload;
        if (!(await m.erasures.exists({ _id: p.requestId }))) return;
        await m.contacts.deleteOne({ _id: p.subjectId });
        await m.letters.deleteMany({ subjectId: p.subjectId });
        await m.sink.deleteMany({ subjectId: p.subjectId });
      },

      'privacy.retention.sweep-requested': async (event) => {
        const p = event.payload;
        const prior = await m.sweeps.findById(p.sweepId).lean();
        const entry = (counts: Counts, batches: number) => app.outbox.entry('privacy.retention.sweep-replied', {
          correlationId: event.correlationId, payload: { sweepId: p.sweepId, participant: 'incident', status: 'completed', counts, batches },
        });
        if (prior) return;
        const asOf = new Date(p.asOf);
        const heldSubjects = await app.legalHolds.heldSubjects(p.heldSubjects);
        const counts: Counts = { erased: 0, anonymized: 0, kept: 0 };
        let batches = 0;
        const inBatches = async (find: () => Promise<{ _id: string }[]>, apply: (ids: string[]) => Promise<number>, key: keyof Counts) => {
          for (;;) {
            const ids = (await find()).map((d) => d._id);
            if (!ids.length) return;
            counts[key] += await apply(ids);
            batches += 1;
            if (ids.length < p.batchSize) return;
          }
        };
        for (const rule of p.rules) {
          const cutoff = new Date(asOf.getTime() - rule.periodDays * 86_400_000);
          if (rule.category === 'support-report') {
            const filter = leavingHeld({ status: { $in: ['resolved', 'closed'] }, updatedAt: { $lt: cutoff }, anonymized: { $ne: true }, isolated: { $exists: false } }, heldSubjects, rule.category);
            if (rule.action === 'erase') {
              await inBatches(() => m.reports.find(filter).limit(p.batchSize).select({ _id: 1 }).lean(), async (ids) => (await m.reports.deleteMany({ _id: { $in: ids } })).deletedCount, 'erased');
            } else {
              await inBatches(() => m.reports.find(filter).limit(p.batchSize).select({ _id: 1 }).lean(), async (ids) => (await m.reports.updateMany({ _id: { $in: ids } }, {
                $set: { subjectId: null, title: '[anonymized]', text: '', replies: [], anonymized: true }, $unset: { resolution: 1, sourceReportId: 1 },
              })).modifiedCount, 'anonymized');
            }
          } else if (rule.category === 'notification-record') {
            const filter = leavingHeld({ status: { $in: ['delivered', 'failed', 'unreachable', 'declined'] }, createdAt: { $lt: cutoff }, keptUntil: { $exists: false } }, heldSubjects, rule.category);
            await inBatches(() => m.deliveries.find(filter).limit(p.batchSize).select({ _id: 1 }).lean(), async (ids) => (await m.deliveries.deleteMany({ _id: { $in: ids } })).deletedCount, 'erased');
            await inBatches(() => m.letters.find(leavingHeld({ queuedAt: { $lt: cutoff } }, heldSubjects, rule.category)).limit(p.batchSize).select({ _id: 1 }).lean(), async (ids) => (await m.letters.deleteMany({ _id: { $in: ids } })).deletedCount, 'erased');
          }
        }
        // Records kept by law (pseudonymous or isolated) whose date has come.
        await inBatches(() => m.deliveries.find({ keptUntil: { $lt: asOf } }).limit(p.batchSize).select({ _id: 1 }).lean(), async (ids) => (await m.deliveries.deleteMany({ _id: { $in: ids } })).deletedCount, 'erased');
        await inBatches(() => m.isolatedContacts.find({ purgeAt: { $lt: asOf } }).limit(p.batchSize).select({ _id: 1 }).lean(), async (ids) => (await m.isolatedContacts.deleteMany({ _id: { $in: ids } })).deletedCount, 'erased');
        // Pseudonyms kept in affected-subject chunks: dropped once their date has come.
        await inBatches(() => m.affected.find({ keptUntil: { $lt: asOf }, 'pseudonyms.0': { $exists: true } }).limit(p.batchSize).select({ _id: 1 }).lean(), async (ids) => (await m.affected.updateMany({ _id: { $in: ids } }, { $set: { pseudonyms: [] }, $unset: { keptUntil: 1 } })).modifiedCount, 'erased');
        await inBatches(() => m.reports.find({ 'isolated.purgeAt': { $lt: asOf } }).limit(p.batchSize).select({ _id: 1 }).lean(), async (ids) => (await m.reports.updateMany({ _id: { $in: ids } }, {
          $set: { subjectId: null, title: '[anonymized]', text: '', replies: [], anonymized: true }, $unset: { isolated: 1, resolution: 1, sourceReportId: 1 },
        })).modifiedCount, 'anonymized');
        try {
          await app.outbox.insert(m.sweeps, { _id: p.sweepId, counts, batches, at: new Date() }, [entry(counts, batches)]);
        } catch (err) {
          if ((err as { code?: number }).code !== 11000) throw err;
        }
      },
    },
  });
}
