import { DATA_CATEGORIES, type DataCategory } from '@pipp/contracts';
import { KeyedLock } from '@pipp/service-kit';
import { Type, type Static } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import { DELIVERY_MODES, defaultMode } from '../../domain/delivery.js';
import { canMoveIncident, changedFields, incidentElements, incidentTimesProblem, pastTimeProblem } from '../../domain/incidents.js';
import { missingElements } from '../../domain/notice.js';
import { IncidentErrors } from '../../errors.js';
import type { Config } from '../../config.js';
import type { Incident, TimelineEntry } from '../../plugins/models.js';
import { toAnnouncement, toNotification } from '../views.js';
import {
  AnnouncementSchema, ChannelSchema, Cursor, IdParams, IncidentFields, IncidentSchema, IncidentStatusSchema, Limit, NotificationSchema,
  Page, RegulatorReportSchema, SubjectId, Text, Timestamp, errors,
} from '../schemas.js';

const iso = (d: Date | undefined) => (d ? new Date(d).toISOString() : undefined);

/** An incident as the API shows it. */
export function toIncident(i: Incident): Static<typeof IncidentSchema> {
  return {
    id: i._id, title: i.title, basicSituation: i.basicSituation, ...(i.cause ? { cause: i.cause } : {}), categories: i.categories as DataCategory[],
    possibleImpact: i.possibleImpact, measuresTaken: i.measuresTaken, measuresPlanned: i.measuresPlanned, advice: i.advice, remedies: i.remedies,
    severity: i.severity, status: i.status, affected: i.affected, affectedCount: i.affectedCount,
    ...(i.occurredAt ? { occurredAt: iso(i.occurredAt)! } : {}), discoveredAt: iso(i.discoveredAt)!,
    createdBy: i.createdBy, createdAt: iso(i.createdAt)!, updatedAt: iso(i.updatedAt)!,
    timeline: i.timeline.map((t) => ({ ...t, at: iso(t.at)! })),
    regulatorReports: i.regulatorReports.map((r) => ({ ...r, reportedAt: iso(r.reportedAt)!, recordedAt: iso(r.recordedAt)! })),
    notificationIds: i.notificationIds, announcementIds: i.announcementIds,
  };
}

const CreateBody = Type.Object({
  ...IncidentFields,
  affected: Type.Optional(Type.Union([Type.Literal('listed'), Type.Literal('all-subjects')], { default: 'listed', description: 'listed: the subjects added to it; all-subjects: everyone in the contact directory' })),
  subjectIds: Type.Optional(Type.Array(SubjectId, { maxItems: 10_000, description: 'Affected subjects (more with POST …/affected-subjects)' })),
}, { additionalProperties: false });

const PatchBody = Type.Partial(Type.Object({ ...IncidentFields, status: IncidentStatusSchema }), { additionalProperties: false, minProperties: 1 });

/**
 * Security incidents (policy 5.4.2; PIPL art. 57), staff only (`operator`, `dpo`), every change
 * audited and written to the incident's timeline:
 * - `POST /admin/incidents` records one; `GET /admin/incidents[/:id]` lists and reads;
 * - `PATCH /admin/incidents/:id` updates the description or moves the status forward;
 * - `POST /admin/incidents/:id/timeline` adds an update note;
 * - `POST /admin/incidents/:id/affected-subjects` adds affected subjects (≤ 10 000 per call);
 * - `POST /admin/incidents/:id/notifications` notifies them (422 PIPP_INCOMPLETE_NOTICE when an
 *   element of 5.4.2 is missing; 409 PIPP_EMPTY_AUDIENCE when nobody is affected);
 * - `POST /admin/incidents/:id/announcements` publishes a public announcement of it;
 * - `POST|GET /admin/incidents/:id/regulator-reports` records the report to the regulator;
 * - `GET /admin/incidents/:id/audit` reads its audit trail.
 */
export default async function incidentRoutes(fastify: FastifyInstance, opts: { config: Config }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const staff = app.requireRole('operator', 'dpo');
  /**
   * An incident's affected subjects and notifications change one call at a time (in this process):
   * parallel additions each counted from the same read (10 added, a count of 2) and parallel
   * notifications each went out.
   */
  const perIncident = new KeyedLock();
  const m = app.models;

  /** @throws PIPP_BAD_TIME (400, 5.4.2) naming the field, when the times cannot be (incidentTimesProblem). */
  const checkTimes = (occurredAt: string | undefined, discoveredAt: string, now: Date) => {
    const problem = incidentTimesProblem({ occurredAt: occurredAt === undefined ? undefined : Date.parse(occurredAt), discoveredAt: Date.parse(discoveredAt) }, now.getTime());
    if (problem) throw IncidentErrors.badTime(problem.message, { clause: '5.4.2', details: [{ path: `/body/${problem.field}`, message: problem.message }] });
  };
  const load = async (id: string) => {
    const doc = await m.incidents.findById(id).lean();
    if (!doc) throw IncidentErrors.incidentNotFound(`No security incident ${id}`);
    return doc;
  };
  const entry = (request: { user: { sub: string; role: string } }, kind: TimelineEntry['kind'], extra: Partial<TimelineEntry> = {}): TimelineEntry =>
    ({ at: new Date(), by: request.user.sub, role: request.user.role, kind, ...extra });

  app.post('/admin/incidents', {
    preHandler: staff,
    schema: { tags: ['incidents'], summary: 'Record a security incident (5.4.2)', body: CreateBody, response: { 201: IncidentSchema, ...errors(400, 401, 403) } },
  }, async (request, reply) => {
    const b = request.body;
    const now = new Date();
    checkTimes(b.occurredAt, b.discoveredAt ?? now.toISOString(), now);
    const id = `inc_${randomUUID()}`;
    const subjectIds = [...new Set(b.subjectIds ?? [])];
    const doc: Incident = {
      _id: id, title: b.title, basicSituation: b.basicSituation, ...(b.cause ? { cause: b.cause } : {}), categories: b.categories,
      affected: b.affected ?? 'listed', affectedCount: subjectIds.length, possibleImpact: b.possibleImpact, measuresTaken: b.measuresTaken,
      measuresPlanned: b.measuresPlanned, advice: b.advice, remedies: b.remedies, severity: b.severity, status: 'open',
      ...(b.occurredAt ? { occurredAt: new Date(b.occurredAt) } : {}), discoveredAt: b.discoveredAt ? new Date(b.discoveredAt) : now,
      createdBy: request.user.sub, createdAt: now, updatedAt: now, timeline: [entry(request, 'created')], regulatorReports: [], notificationIds: [], announcementIds: [],
    };
    await m.incidents.create(doc);
    if (subjectIds.length) await app.notifier.addAffected(id, subjectIds);
    await app.audit(request, 'incident.created', { type: 'incident', id });
    return reply.code(201).send(toIncident(doc));
  });

  app.get('/admin/incidents', {
    preHandler: staff,
    schema: {
      tags: ['incidents'], summary: 'List security incidents, newest first',
      querystring: Type.Object({ status: Type.Optional(IncidentStatusSchema), limit: Limit, cursor: Type.Optional(Cursor) }, { additionalProperties: false }),
      response: { 200: Page(IncidentSchema), ...errors(400, 401, 403) },
    },
  }, async (request) => {
    const { status, limit, cursor } = request.query;
    const filter: Record<string, unknown> = {};
    if (status) filter.status = status;
    if (cursor) filter._id = { $lt: cursor };
    const docs = await m.incidents.find(filter).sort({ _id: -1 }).limit(limit + 1).lean();
    const items = docs.slice(0, limit).map(toIncident);
    return { items, next: docs.length > limit ? items[items.length - 1]!.id : null };
  });

  app.get('/admin/incidents/:id', {
    preHandler: staff,
    schema: { tags: ['incidents'], summary: 'Read a security incident', params: IdParams, response: { 200: IncidentSchema, ...errors(400, 401, 403, 404) } },
  }, async (request) => toIncident(await load(request.params.id)));

  app.patch('/admin/incidents/:id', {
    preHandler: staff,
    schema: {
      tags: ['incidents'], summary: 'Update an incident (audited; status only moves forward)', params: IdParams, body: PatchBody,
      response: { 200: IncidentSchema, ...errors(400, 401, 403, 404, 409) },
    },
  }, async (request) => {
    const current = await load(request.params.id);
    if (current.status === 'closed') throw IncidentErrors.incidentClosed('A closed incident cannot change; open a new one', { clause: '5.4.2' });
    const b = request.body;
    if (b.status && !canMoveIncident(current.status, b.status)) {
      throw IncidentErrors.badTransition(`An incident cannot go from ${current.status} to ${b.status}`, { clause: '5.4.2' });
    }
    checkTimes(b.occurredAt ?? current.occurredAt?.toISOString(), b.discoveredAt ?? current.discoveredAt.toISOString(), new Date());
    const patch: Record<string, unknown> = { ...b };
    if (b.occurredAt) patch.occurredAt = new Date(b.occurredAt);
    if (b.discoveredAt) patch.discoveredAt = new Date(b.discoveredAt);
    const fields = changedFields(current as unknown as Record<string, unknown>, Object.fromEntries(Object.entries(b).map(([k, v]) => [k, k.endsWith('At') ? new Date(v as string) : v])));
    if (!fields.length) return toIncident(current);
    const now = new Date();
    const timeline = [entry(request, fields.includes('status') ? 'status' : 'updated', { fields, ...(b.status ? { text: `${current.status} → ${b.status}` } : {}) })];
    const updated = await m.incidents.findOneAndUpdate({ _id: current._id, status: current.status }, { $set: { ...patch, updatedAt: now }, $push: { timeline: { $each: timeline } } }, { new: true }).lean();
    if (!updated) throw IncidentErrors.badTransition('The incident changed meanwhile; read it again and retry');
    await app.audit(request, 'incident.updated', { type: 'incident', id: current._id }, { fields });
    return toIncident(updated);
  });

  app.post('/admin/incidents/:id/timeline', {
    preHandler: staff,
    schema: {
      tags: ['incidents'], summary: 'Add an update to the incident timeline', params: IdParams,
      body: Type.Object({ text: Text(4000) }, { additionalProperties: false }), response: { 201: IncidentSchema, ...errors(400, 401, 403, 404, 409) },
    },
  }, async (request, reply) => {
    const current = await load(request.params.id);
    if (current.status === 'closed') throw IncidentErrors.incidentClosed('A closed incident takes no updates', { clause: '5.4.2' });
    const updated = await m.incidents.findOneAndUpdate({ _id: current._id }, { $push: { timeline: entry(request, 'note', { text: request.body.text }) }, $set: { updatedAt: new Date() } }, { new: true }).lean();
    await app.audit(request, 'incident.timeline-added', { type: 'incident', id: current._id });
    return reply.code(201).send(toIncident(updated!));
  });

  app.post('/admin/incidents/:id/affected-subjects', {
    preHandler: staff,
    schema: {
      tags: ['incidents'], summary: 'Add affected subjects (≤ 10 000 per call; repeat for more)', params: IdParams,
      body: Type.Object({ subjectIds: Type.Array(SubjectId, { minItems: 1, maxItems: 10_000 }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ added: Type.Integer(), affectedCount: Type.Integer() }), ...errors(400, 401, 403, 404, 409) },
    },
  }, async (request) => perIncident.run(request.params.id, async () => {
    const current = await load(request.params.id);
    if (current.status === 'closed') throw IncidentErrors.incidentClosed('A closed incident cannot change', { clause: '5.4.2' });
    const { added, total: affectedCount } = await app.notifier.addAffected(current._id, request.body.subjectIds);
    // Only new subjects change the incident: listing known ones again must not let it be notified
    // again (everyone received the same notice twice).
    if (added) {
      await m.incidents.updateOne({ _id: current._id }, {
        $set: { affectedCount, updatedAt: new Date() },
        $push: { timeline: entry(request, 'affected-subjects', { text: `${added} affected subject(s) added; ${affectedCount} in all` }) },
      });
    }
    await app.audit(request, 'incident.affected-subjects-added', { type: 'incident', id: current._id });
    return { added, affectedCount };
  }));

  app.post('/admin/incidents/:id/notifications', {
    preHandler: staff,
    schema: {
      tags: ['incidents'], summary: 'Notify the affected subjects on their channels (5.4.2); 202 with progress to follow', params: IdParams,
      body: Type.Object({
        title: Type.Optional(Text(200)),
        body: Type.Optional(Text(4000, 'Opening paragraph')),
        channels: Type.Optional(Type.Array(ChannelSchema, { minItems: 1, maxItems: 5, uniqueItems: true, description: 'Restrict to these channels' })),
        mode: Type.Optional(Type.Union(DELIVERY_MODES.map((x) => Type.Literal(x)), { description: 'Default: every-channel for high and critical incidents, first-channel otherwise' })),
      }, { additionalProperties: false }),
      response: { 202: NotificationSchema, ...errors(400, 401, 403, 404, 409, 422) },
    },
  }, async (request, reply) => perIncident.run(request.params.id, async () => {
    const i = await load(request.params.id);
    // One notice per thing to tell: ten clicks (or ten parallel calls) had sent every subject ten.
    const lastId = i.notificationIds.at(-1);
    const last = lastId ? await m.notifications.findById(lastId).lean() : null;
    if (last?.status === 'planning' || last?.status === 'delivering') {
      throw IncidentErrors.notificationInProgress(`Notification ${last._id} of this incident is still being delivered; follow it at /v1/incident/admin/notifications/${last._id}`, { clause: '5.4.2' });
    }
    if (last?.status === 'completed' && new Date(last.createdAt) >= new Date(i.updatedAt)) {
      throw IncidentErrors.alreadyNotified(`Notification ${last._id} told the affected subjects about this incident as it stands; record what changed (details, a timeline update or more affected subjects) to notify them again`, { clause: '5.4.2' });
    }
    const categoryTitles = Object.fromEntries(i.categories.map((c) => [c, DATA_CATEGORIES[c as DataCategory]?.title ?? c]));
    const elements = incidentElements({ ...i, categoryTitles });
    const missing = missingElements('security-incident', elements);
    if (missing.length) {
      throw IncidentErrors.incompleteNotice(`The notice lacks ${missing.join(', ')}; complete the incident first`, {
        clause: '5.4.2', details: missing.map((name) => ({ path: `/incident/${name}`, message: 'is required in a security incident notice' })),
      });
    }
    const audience = i.affected === 'all-subjects' ? { kind: 'all-subjects' as const } : { kind: 'incident' as const, incidentId: i._id };
    if (audience.kind === 'incident' && i.affectedCount === 0) {
      throw IncidentErrors.emptyAudience('No affected subjects are recorded; add them or publish an announcement', { clause: '5.4.2' });
    }
    const result = await app.notifier.notify({
      kind: 'security-incident', clause: '5.4.2', title: request.body.title ?? `Security notice: ${i.title}`, body: request.body.body,
      elements, channels: request.body.channels, mode: request.body.mode ?? defaultMode('security-incident', i.severity), incidentId: i._id, audience,
      requestedBy: { service: 'incident', actor: request.user.sub, role: request.user.role },
    });
    if (!result.ok) throw IncidentErrors.incompleteNotice(`The notice lacks ${result.missing.join(', ')}`, { clause: '5.4.2' });
    await app.audit(request, 'incident.notified', { type: 'notification', id: result.notification._id });
    return reply.code(202).send(toNotification(result.notification));
  }));

  app.post('/admin/incidents/:id/announcements', {
    preHandler: staff,
    schema: {
      tags: ['incidents'], summary: 'Publish a public announcement of the incident (5.4.2)', params: IdParams,
      body: Type.Object({ title: Type.Optional(Text(200)), body: Type.Optional(Text(4000)) }, { additionalProperties: false }),
      response: { 201: AnnouncementSchema, ...errors(400, 401, 403, 404, 422) },
    },
  }, async (request, reply) => {
    const i = await load(request.params.id);
    const categoryTitles = Object.fromEntries(i.categories.map((c) => [c, DATA_CATEGORIES[c as DataCategory]?.title ?? c]));
    const elements = incidentElements({ ...i, categoryTitles });
    const missing = missingElements('security-incident', elements);
    if (missing.length) throw IncidentErrors.incompleteNotice(`The announcement lacks ${missing.join(', ')}`, { clause: '5.4.2' });
    const pseudoNotification = {
      _id: `op_${randomUUID()}`, kind: 'security-incident' as const, title: request.body.title ?? `Security announcement: ${i.title}`,
      body: request.body.body, elements, contact: opts.config.CONTACT_INFO, incidentId: i._id, audienceSize: i.affectedCount,
    };
    const annId = await app.notifier.announce({ notification: pseudoNotification, reason: 'operator', publishedBy: request.user.sub });
    await m.incidents.updateOne({ _id: i._id }, { $addToSet: { announcementIds: annId }, $push: { timeline: entry(request, 'announced', { text: `announcement ${annId}` }) } });
    await app.audit(request, 'incident.announced', { type: 'announcement', id: annId });
    return reply.code(201).send(toAnnouncement((await m.announcements.findById(annId).lean())!));
  });

  const RegulatorBody = Type.Object({
    regulator: Text(200, 'The authority reported to'),
    reportedAt: Timestamp,
    method: Text(100, 'How: online portal, letter, e-mail …'),
    reference: Type.Optional(Text(200, 'The authority\'s case or receipt number')),
    summary: Text(4000, 'What was reported'),
  }, { additionalProperties: false });

  app.post('/admin/incidents/:id/regulator-reports', {
    preHandler: staff,
    schema: {
      tags: ['incidents'], summary: 'Record the report of the incident to the regulator (PIPL art. 57); also once the incident is closed (a late record of a report made in time)', params: IdParams, body: RegulatorBody,
      response: { 201: RegulatorReportSchema, ...errors(400, 401, 403, 404) },
    },
  }, async (request, reply) => {
    const i = await load(request.params.id);
    const b = request.body;
    const reportedAt = Date.parse(b.reportedAt);
    // A report is made of an incident already found (PIPL art. 57): not before its discovery.
    const problem = pastTimeProblem('reportedAt', reportedAt, Date.now())
      ?? (reportedAt < i.discoveredAt.getTime() ? `reportedAt cannot come before the incident was discovered (${i.discoveredAt.toISOString()})` : null);
    if (problem) throw IncidentErrors.badTime(problem, { details: [{ path: '/body/reportedAt', message: problem }] });
    const report = {
      id: `reg_${randomUUID()}`, regulator: b.regulator, reportedAt: new Date(b.reportedAt), method: b.method, ...(b.reference ? { reference: b.reference } : {}),
      summary: b.summary, recordedBy: request.user.sub, recordedAt: new Date(),
    };
    await m.incidents.updateOne({ _id: i._id }, {
      $push: { regulatorReports: report, timeline: entry(request, 'regulator-report', { text: `reported to ${b.regulator} (${b.method})` }) }, $set: { updatedAt: new Date() },
    });
    await app.audit(request, 'incident.regulator-report-recorded', { type: 'incident', id: i._id });
    return reply.code(201).send({ ...report, reportedAt: report.reportedAt.toISOString(), recordedAt: report.recordedAt.toISOString() });
  });

  app.get('/admin/incidents/:id/regulator-reports', {
    preHandler: staff,
    schema: { tags: ['incidents'], summary: 'Reports of the incident to the regulator', params: IdParams, response: { 200: Type.Array(RegulatorReportSchema), ...errors(400, 401, 403, 404) } },
  }, async (request) => toIncident(await load(request.params.id)).regulatorReports);

  app.get('/admin/incidents/:id/audit', {
    preHandler: staff,
    schema: {
      tags: ['incidents'], summary: 'Audit trail of the incident', params: IdParams,
      response: { 200: Type.Array(Type.Object({ at: Timestamp, actor: Type.String(), role: Type.String(), action: Type.String(), fields: Type.Optional(Type.Array(Type.String())) })), ...errors(400, 401, 403, 404) },
    },
  }, async (request) => {
    const i = await load(request.params.id);
    const notes = [i._id, ...i.notificationIds, ...i.announcementIds];
    const rows = await m.audit.find({ 'target.id': { $in: notes } }).sort({ at: 1 }).limit(1000).lean();
    return rows.map((r) => ({ at: r.at.toISOString(), actor: r.actor, role: r.role, action: r.action, ...(r.fields ? { fields: r.fields } : {}) }));
  });
}
