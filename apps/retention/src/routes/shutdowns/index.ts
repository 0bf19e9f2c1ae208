import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { DataCategorySchema, RecordId, SubjectId, Timestamp, VisibleText } from '@pipp/contracts';
import { Type, type Static } from '@sinclair/typebox';
import { actorOf } from '../../plugins/audit.js';
import type { ShutdownDoc } from '../../plugins/models.js';
import { errorResponses } from '../schemas.js';

const FunctionId = Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z0-9][a-z0-9._-]*$', description: 'The function or product id (as in the consent catalogue)' });
const ShutdownView = Type.Object({
  shutdownId: RecordId,
  functionId: FunctionId,
  title: Type.String(),
  effectiveAt: Timestamp,
  action: Type.Union([Type.Literal('erase'), Type.Literal('anonymize')]),
  categories: Type.Array(DataCategorySchema, { description: 'What the function collected: collection of all of it stops' }),
  erasedCategories: Type.Array(DataCategorySchema, { description: 'Of those, what is erased or anonymized: what no other active function processes (2.1)' }),
  keptCategories: Type.Array(Type.Object({ category: DataCategorySchema, usedBy: Type.Array(Type.String(), { description: 'The active functions that still process it' }) }), { description: 'What is kept for the functions that go on (policy 2.1)' }),
  notice: Type.Object({ mode: Type.Union([Type.Literal('individual'), Type.Literal('announcement')]), notificationIds: Type.Array(Type.String()) }),
  affectedSubjects: Type.Integer(),
  erasureRequestsOpened: Type.Integer({ description: 'Of the affected subjects, how many erasure requests are opened so far (in the background)' }),
  status: Type.Union([Type.Literal('collection-stopped'), Type.Literal('erasing'), Type.Literal('completed')]),
  sweepId: RecordId,
  sweepStatus: Type.Optional(Type.String()),
  openRequests: Type.Optional(Type.Integer({ description: 'Erasure requests of the affected subjects still in progress, as counted at openRequestsCountedAt (every 15 s while erasing; absent before the first count)' })),
  openRequestsCountedAt: Type.Optional(Timestamp),
  createdAt: Timestamp,
  completedAt: Type.Optional(Timestamp),
});
const PublicShutdownView = Type.Pick(ShutdownView, ['functionId', 'title', 'effectiveAt', 'action', 'categories', 'erasedCategories']);

function shutdownView(s: ShutdownDoc, extra: { sweep?: { status: string } | null } = {}): Static<typeof ShutdownView> {
  return {
    shutdownId: s._id, functionId: s.functionId, title: s.title, effectiveAt: s.effectiveAt.toISOString(), action: s.action, categories: s.categories,
    erasedCategories: s.erasedCategories, keptCategories: s.keptCategories, notice: s.notice, affectedSubjects: s.affectedSubjects.length, erasureRequestsOpened: s.erasuresOpened ?? 0, status: s.status, sweepId: s.sweepId, createdAt: s.createdAt.toISOString(),
    ...(s.completedAt ? { completedAt: s.completedAt.toISOString() } : {}), ...(extra.sweep ? { sweepStatus: extra.sweep.status } : {}),
    ...(s.openRequests !== undefined ? { openRequests: s.openRequests } : {}),
    ...(s.openRequestsCountedAt ? { openRequestsCountedAt: s.openRequestsCountedAt.toISOString() } : {}),
  };
}

/**
 * Business shutdown (policy 2.4.2(5)): `/v1/retention/admin/shutdowns…` (operator, dpo) closes a
 * function or product: collection stops at once everywhere (`privacy.function.shutdown`), subjects
 * are notified one by one or by announcement (incident), and its data is erased or anonymized
 * through the saga, except the categories other functions still process (kept, named). The function
 * must be an active one of consent's catalogue. `GET /v1/retention/public/shutdowns` lists closed
 * functions for anyone.
 */
const shutdowns: FastifyPluginAsyncTypebox = async (app) => {
  const staff = app.requireRole('operator', 'dpo');

  /**
   * Errors: 400 PIPP_VALIDATION / PIPP_BAD_TIME; 404 PIPP_FUNCTION_UNKNOWN; 409
   * PIPP_FUNCTION_ALREADY_SHUT_DOWN; 422 PIPP_SHUTDOWN_INVALID; 503 when consent cannot say.
   */
  app.post('/admin/shutdowns', {
    preHandler: staff,
    // Room for the 10 000 affected subject ids the schema admits (the services' default is 256 KiB).
    bodyLimit: 1024 * 1024,
    schema: {
      summary: 'Shut down a function or product (operator, dpo)', tags: ['shutdowns'],
      body: Type.Object({
        functionId: FunctionId,
        title: VisibleText(120, { description: 'The name subjects know it by' }),
        effectiveAt: Type.Optional(Type.String({ format: 'date-time', description: 'When the function stops (default now; at most 366 days ahead): collection is refused from then on, and its data is erased or anonymized from then on' })),
        action: Type.Union([Type.Literal('erase'), Type.Literal('anonymize')]),
        categories: Type.Optional(Type.Array(DataCategorySchema, { minItems: 1, maxItems: 32, uniqueItems: true, description: 'The categories of PI collected for the function; default all the consent catalogue lists for it' })),
        affectedSubjects: Type.Optional(Type.Array(SubjectId, { maxItems: 10_000, uniqueItems: true, description: 'Known affected subjects: notified one by one and erased per subject; otherwise an announcement' })),
      }, { additionalProperties: false }),
      response: { 201: ShutdownView, ...errorResponses(400, 404, 409, 422, 503) },
    },
  }, async (request, reply) => {
    const b = request.body;
    const doc = await app.shutdowns.create({ ...b, effectiveAt: b.effectiveAt ? new Date(b.effectiveAt) : undefined }, actorOf(request.user));
    return reply.code(201).send(shutdownView(doc));
  });

  app.get('/admin/shutdowns', {
    preHandler: staff,
    schema: {
      summary: 'Shutdowns, newest first (operator, dpo)', tags: ['shutdowns'],
      querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 100, default: 50 }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ items: Type.Array(ShutdownView) }), ...errorResponses(400) },
    },
  }, async (request) => ({ items: (await app.shutdowns.list(request.query.limit)).map((s) => shutdownView(s)) }));

  app.get('/admin/shutdowns/:shutdownId', {
    preHandler: staff,
    schema: { summary: 'One shutdown and how far its erasure got (operator, dpo)', tags: ['shutdowns'], params: Type.Object({ shutdownId: RecordId }), response: { 200: ShutdownView, ...errorResponses(404) } },
  }, async (request) => {
    const s = await app.shutdowns.get(request.params.shutdownId);
    return shutdownView(s, { sweep: s.sweep });
  });

  app.get('/public/shutdowns', {
    schema: {
      summary: 'Functions and products that stopped operating (anyone; policy 2.4.2(5))', tags: ['shutdowns'],
      response: { 200: Type.Object({ items: Type.Array(PublicShutdownView) }) },
    },
  }, async () => ({
    items: (await app.shutdowns.list(100)).map((s) => ({ functionId: s.functionId, title: s.title, effectiveAt: s.effectiveAt.toISOString(), action: s.action, categories: s.categories, erasedCategories: s.erasedCategories })),
  }));
};

export default shutdowns;
