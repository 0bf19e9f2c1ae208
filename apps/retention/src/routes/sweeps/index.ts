import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { EffectCounts, ErasureParticipantSchema, RecordId, Timestamp } from '@pipp/contracts';
import { Type, type Static } from '@sinclair/typebox';
import { sweepTotals, type SweepProgress } from '../../domain/sweeps.js';
import { actorOf } from '../../plugins/audit.js';
import type { SweepDoc } from '../../plugins/models.js';
import { errorResponses } from '../schemas.js';

const SweepView = Type.Object({
  sweepId: RecordId,
  kind: Type.Union([Type.Literal('scheduled'), Type.Literal('manual'), Type.Literal('shutdown')]),
  status: Type.Union([Type.Literal('running'), Type.Literal('completed'), Type.Literal('failed')]),
  shutdownId: Type.Optional(RecordId),
  functionId: Type.Optional(Type.String()),
  asOf: Timestamp,
  startedAt: Timestamp,
  completedAt: Type.Optional(Timestamp),
  batchSize: Type.Integer(),
  rules: Type.Integer({ description: 'Number of retention rules applied' }),
  totals: Type.Composite([EffectCounts, Type.Object({ batches: Type.Integer() })]),
  expiredSubjects: Type.Integer({ description: 'Accounts past their period, erased everywhere through the saga' }),
  participants: Type.Array(Type.Object({
    participant: ErasureParticipantSchema,
    state: Type.Union(['requested', 'in-progress', 'completed', 'failed'].map((s) => Type.Literal(s))),
    attempt: Type.Integer(),
    counts: EffectCounts,
    batches: Type.Integer(),
    lastReplyAt: Type.Optional(Timestamp),
    error: Type.Optional(Type.String()),
  })),
});

function sweepView(s: SweepDoc): Static<typeof SweepView> {
  return {
    sweepId: s._id, kind: s.kind, status: s.status, ...(s.shutdownId ? { shutdownId: s.shutdownId } : {}), ...(s.functionId ? { functionId: s.functionId } : {}),
    asOf: s.asOf.toISOString(), startedAt: s.startedAt.toISOString(), ...(s.completedAt ? { completedAt: s.completedAt.toISOString() } : {}),
    batchSize: s.batchSize, rules: s.rules.length, totals: sweepTotals(s.participants), expiredSubjects: s.expiredSubjects,
    participants: (Object.entries(s.participants) as [Static<typeof ErasureParticipantSchema>, SweepProgress][]).map(([participant, p]) => ({
      participant, state: p.state, attempt: p.attempt, counts: p.counts, batches: p.batches,
      ...(p.lastReplyAt ? { lastReplyAt: new Date(p.lastReplyAt).toISOString() } : {}), ...(p.error ? { error: p.error } : {}),
    })),
  };
}

/**
 * Expiry sweeps (policy 5.1, 5.2, 4.2.5): `/v1/retention/admin/sweeps…` (operator, dpo): start one now
 * and follow each participant's progress (the status endpoint of the scheduled job).
 */
const sweeps: FastifyPluginAsyncTypebox = async (app) => {
  const staff = app.requireRole('operator', 'dpo');

  app.post('/admin/sweeps', {
    preHandler: staff,
    schema: { summary: 'Start an expiry sweep now (operator, dpo)', tags: ['sweeps'], response: { 202: SweepView, ...errorResponses() } },
  }, async (request, reply) => {
    const sweep = await app.sweeps.start({ kind: 'manual', startedBy: actorOf(request.user) });
    await app.audit({ actor: actorOf(request.user), action: 'sweep.start', target: { type: 'sweep', id: sweep._id }, clause: '5.1' });
    return reply.code(202).send(sweepView(sweep));
  });

  app.get('/admin/sweeps', {
    preHandler: staff,
    schema: {
      summary: 'Expiry sweeps, newest first, and when the next scheduled one runs (operator, dpo)', tags: ['sweeps'],
      querystring: Type.Object({ status: Type.Optional(Type.Union([Type.Literal('running'), Type.Literal('completed'), Type.Literal('failed')])), limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ items: Type.Array(SweepView), nextScheduledAt: Type.Union([Timestamp, Type.Null()]) }), ...errorResponses(400) },
    },
  }, async (request) => {
    const next = await app.sweeps.nextScheduled();
    return { items: (await app.sweeps.list(request.query.limit, request.query.status)).map(sweepView), nextScheduledAt: next ? next.toISOString() : null };
  });

  app.get('/admin/sweeps/:sweepId', {
    preHandler: staff,
    schema: { summary: 'One sweep\'s progress per participant (operator, dpo)', tags: ['sweeps'], params: Type.Object({ sweepId: RecordId }), response: { 200: SweepView, ...errorResponses(404) } },
  }, async (request) => sweepView(await app.sweeps.get(request.params.sweepId)));
};

export default sweeps;
