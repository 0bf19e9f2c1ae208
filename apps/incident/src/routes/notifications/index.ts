import { CHANNELS, ChannelSchema, NOTIFICATION_KINDS, SubjectId } from '@pipp/contracts';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { DELIVERY_MODES } from '../../domain/delivery.js';
import { IncidentErrors } from '../../errors.js';
import type { Notification } from '../../plugins/models.js';
import { toDelivery, toNotification } from '../views.js';
import { Cursor, DeliverySchema, IdParams, KindSchema, Limit, NotificationSchema, Page, ProgressSchema, SubjectParams, Text, Timestamp, errors } from '../schemas.js';

const STATUSES = ['queued', 'retrying', 'delivered', 'failed', 'unreachable', 'declined'] as const;

/**
 * Notifications and their delivery (policy 5.4.2, VI, 2.4.2(5)):
 * - `POST /admin/notifications` (operator, dpo): send a notice to listed subjects or to everyone;
 * - `GET /admin/notifications[/:id]`: progress of each (exact counts per delivery status, retries,
 *   fallbacks, per channel);
 * - `GET /admin/notifications/:id/deliveries`: per subject and channel, every attempt (audited);
 * - `GET /subjects/:subjectId/notifications`: the notices a subject was sent, and how (their own, or
 *   staff, audited).
 */
export default async function notificationRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const staff = app.requireRole('operator', 'dpo');
  const m = app.models;

  /**
   * Exact progress of a notification, computed from its deliveries ($group with $sum only): counts per
   * status, retries and fallbacks, deliveries accepted per channel, batches done.
   */
  async function progressOf(n: Notification): Promise<Static<typeof ProgressSchema>> {
    // Grouped by the counters' values too (FerretDB 1.24 sums field paths as 0; counting is portable).
    const rows = await m.deliveries.aggregate<{ _id: { status: string; channels: string[] | null; retries: number | null; fallbacks: number | null }; n: number }>([
      { $match: { notificationId: n._id } },
      { $group: { _id: { status: '$status', channels: '$deliveredChannels', retries: '$retries', fallbacks: '$fallbacks' }, n: { $sum: 1 } } },
    ]);
    const byStatus = Object.fromEntries(STATUSES.map((s) => [s, 0])) as Record<(typeof STATUSES)[number], number>;
    const byChannel: Record<string, number> = Object.fromEntries(CHANNELS.map((c) => [c, 0]));
    let retries = 0;
    let fallbacks = 0;
    for (const r of rows) {
      if (r._id.status in byStatus) byStatus[r._id.status as keyof typeof byStatus] += r.n;
      for (const c of r._id.channels ?? []) byChannel[c] = (byChannel[c] ?? 0) + r.n;
      retries += (r._id.retries ?? 0) * r.n;
      fallbacks += (r._id.fallbacks ?? 0) * r.n;
    }
    const final = byStatus.delivered + byStatus.failed + byStatus.unreachable + byStatus.declined;
    const target = n.reach.oneByOne ? n.audienceSize : 0;
    const batchesProcessed = n.status === 'completed' ? n.plan.batches : await m.batchesDone.countDocuments({ notificationId: n._id });
    const lastBatch = n.plan.done ? undefined : await m.batches.findOne({ notificationId: n._id }).sort({ batch: -1 }).select({ batch: 1, planned: 1 }).lean();
    return {
      audienceSize: n.audienceSize, planned: lastBatch?.planned ?? n.plan.subjects, batches: lastBatch?.batch ?? n.plan.batches, batchesProcessed,
      byStatus, byChannel, retries, fallbacks,
      percentDone: n.status === 'completed' ? 100 : target ? Math.min(100, Math.round((final / target) * 1000) / 10) : 0,
    };
  }
  const load = async (id: string) => {
    const n = await m.notifications.findById(id).lean();
    if (!n) throw IncidentErrors.notificationNotFound(`No notification ${id}`);
    return n;
  };

  app.post('/admin/notifications', {
    preHandler: staff,
    schema: {
      tags: ['notifications'], summary: 'Send a notice to listed subjects or to everyone (one by one, or by announcement above the threshold)',
      body: Type.Object({
        kind: Type.Union(NOTIFICATION_KINDS.filter((k) => k !== 'security-incident').map((k) => Type.Literal(k)), { description: 'Security incidents are notified from the incident' }),
        title: Text(200), body: Type.Optional(Text(8000)),
        elements: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z][A-Za-z0-9]{0,63}$' }), Text(4000), { additionalProperties: false, maxProperties: 32 })),
        channels: Type.Optional(Type.Array(ChannelSchema, { minItems: 1, maxItems: 5, uniqueItems: true })),
        mode: Type.Optional(Type.Union(DELIVERY_MODES.map((x) => Type.Literal(x)), { description: 'first-channel (default): stop at the first channel that accepts; every-channel: all of them' })),
        audience: Type.Union([
          Type.Object({ subjectIds: Type.Array(SubjectId, { minItems: 1, maxItems: 10_000 }) }, { additionalProperties: false }),
          Type.Object({ allSubjects: Type.Literal(true) }, { additionalProperties: false }),
        ]),
      }, { additionalProperties: false }),
      response: { 202: NotificationSchema, ...errors(400, 401, 403, 422) },
    },
  }, async (request, reply) => {
    const b = request.body;
    const result = await app.notifier.notify({
      kind: b.kind, title: b.title, body: b.body, elements: b.elements ?? {}, channels: b.channels, mode: b.mode,
      audience: 'allSubjects' in b.audience ? { kind: 'all-subjects' } : { kind: 'subjects', subjectIds: b.audience.subjectIds },
      requestedBy: { service: 'incident', actor: request.user.sub, role: request.user.role },
    });
    if (!result.ok) {
      throw IncidentErrors.incompleteNotice(`A ${b.kind} notice must carry ${result.missing.join(', ')}`, {
        clause: b.kind === 'policy-update' ? 'VI' : b.kind === 'business-shutdown' ? '2.4.2(5)' : '5.4.2',
        details: result.missing.map((name) => ({ path: `/body/elements/${name}`, message: 'is required' })),
      });
    }
    await app.audit(request, 'notification.requested', { type: 'notification', id: result.notification._id });
    return reply.code(202).send(toNotification(result.notification));
  });

  app.get('/admin/notifications', {
    preHandler: staff,
    schema: {
      tags: ['notifications'], summary: 'List notifications, newest first',
      querystring: Type.Object({ kind: Type.Optional(KindSchema), incidentId: Type.Optional(Cursor), limit: Limit, cursor: Type.Optional(Timestamp) }, { additionalProperties: false }),
      response: { 200: Page(NotificationSchema), ...errors(400, 401, 403) },
    },
  }, async (request) => {
    const { kind, incidentId, limit, cursor } = request.query;
    const filter: Record<string, unknown> = {};
    if (kind) filter.kind = kind;
    if (incidentId) filter.incidentId = incidentId;
    if (cursor) filter.createdAt = { $lt: new Date(cursor) };
    const docs = await m.notifications.find(filter).sort({ createdAt: -1 }).limit(limit + 1).lean();
    const items = docs.slice(0, limit).map((n) => toNotification(n));
    return { items, next: docs.length > limit ? items[items.length - 1]!.createdAt : null };
  });

  app.get('/admin/notifications/:id', {
    preHandler: staff,
    schema: { tags: ['notifications'], summary: 'A notification and its progress', params: IdParams, response: { 200: NotificationSchema, ...errors(400, 401, 403, 404) } },
  }, async (request) => {
    const n = await load(request.params.id);
    return toNotification(n, await progressOf(n));
  });

  app.get('/admin/notifications/:id/deliveries', {
    preHandler: staff,
    schema: {
      tags: ['notifications'], summary: 'Deliveries of a notification, per subject and channel, with every attempt', params: IdParams,
      querystring: Type.Object({ status: Type.Optional(Type.Union(STATUSES.map((s) => Type.Literal(s)))), limit: Limit, cursor: Type.Optional(Cursor) }, { additionalProperties: false }),
      response: { 200: Page(DeliverySchema), ...errors(400, 401, 403, 404) },
    },
  }, async (request) => {
    const n = await load(request.params.id);
    const { status, limit, cursor } = request.query;
    const filter: Record<string, unknown> = { notificationId: n._id };
    if (status) filter.status = status;
    if (cursor) filter._id = { $gt: cursor };
    const docs = await m.deliveries.find(filter).sort({ _id: 1 }).limit(limit + 1).lean();
    const items = docs.slice(0, limit).map(toDelivery);
    await app.audit(request, 'notification.deliveries-read', { type: 'notification', id: n._id });
    return { items, next: docs.length > limit ? items[items.length - 1]!.id : null };
  });

  app.get('/subjects/:subjectId/notifications', {
    preHandler: app.requireSubject('subjectId'),
    schema: {
      tags: ['notifications'], summary: 'Notices sent to a subject and how they were delivered', params: SubjectParams,
      querystring: Type.Object({ limit: Limit }, { additionalProperties: false }),
      response: {
        200: Type.Array(Type.Object({
          notificationId: Type.String(), kind: KindSchema, title: Type.String(), clause: Type.String(), status: Type.String(),
          deliveredChannel: Type.Optional(ChannelSchema), deliveredChannels: Type.Optional(Type.Array(ChannelSchema)), deliveredAt: Type.Optional(Timestamp), createdAt: Timestamp,
        })),
        ...errors(400, 401, 403),
      },
    },
  }, async (request) => {
    const { subjectId } = request.params;
    const deliveries = await m.deliveries.find({ subjectId }).sort({ createdAt: -1 }).limit(request.query.limit).lean();
    const notices = await m.notifications.find({ _id: { $in: deliveries.map((d) => d.notificationId) } }).select({ title: 1, clause: 1 }).lean();
    const byId = new Map(notices.map((n) => [n._id, n]));
    if (request.user.role !== 'subject') await app.audit(request, 'subject.notifications-read', { type: 'subject', id: subjectId }, { subjectId });
    return deliveries.map((d) => ({
      notificationId: d.notificationId, kind: d.kind, title: byId.get(d.notificationId)?.title ?? '', clause: byId.get(d.notificationId)?.clause ?? '',
      status: d.status, ...(d.deliveredChannel ? { deliveredChannel: d.deliveredChannel } : {}), ...(d.deliveredChannels?.length ? { deliveredChannels: d.deliveredChannels } : {}),
      ...(d.deliveredAt ? { deliveredAt: d.deliveredAt.toISOString() } : {}), createdAt: d.createdAt.toISOString(),
    }));
  });
}

export { toDelivery };
