import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { CountryCode, ErasureParticipantSchema, RecordId, SubjectId, Timestamp } from '@pipp/contracts';
import { Type, type Static } from '@sinclair/typebox';
import { actorOf } from '../../plugins/audit.js';
import type { BackupGenerationDoc, RestoreDoc } from '../../plugins/models.js';
import { ActorSchema, errorResponses } from '../schemas.js';

const GenerationView = Type.Object({
  generationId: RecordId, service: ErasureParticipantSchema, takenAt: Timestamp, expiresAt: Timestamp, location: CountryCode,
  reference: Type.Optional(Type.String()), status: Type.Union([Type.Literal('held'), Type.Literal('expired')]), recordedAt: Timestamp, recordedBy: ActorSchema,
});
const RestoreView = Type.Object({
  restoreId: RecordId, generationId: RecordId, service: ErasureParticipantSchema,
  status: Type.Union([Type.Literal('reapplying'), Type.Literal('clean')], { description: 'clean: every erasure the backup predates is re-applied; the data may be used' }),
  planned: Type.Integer({ description: 'Erasures re-applied to the restored service' }), open: Type.Integer({ description: 'Of those, not completed yet, as counted at openCountedAt (every 15 s while re-applying; before the first count, all planned)' }),
  openCountedAt: Type.Optional(Timestamp),
  requestedAt: Timestamp, cleanAt: Type.Optional(Timestamp),
});
const SuppressionView = Type.Object({
  requestId: RecordId, subjectId: SubjectId, requestedAt: Timestamp, completedAt: Type.Union([Timestamp, Type.Null()]),
  status: Type.Union([Type.Literal('active'), Type.Literal('lifted')]), liftedAt: Type.Optional(Timestamp),
});

const generationView = (g: BackupGenerationDoc): Static<typeof GenerationView> => ({
  generationId: g._id, service: g.service as Static<typeof ErasureParticipantSchema>, takenAt: g.takenAt.toISOString(), expiresAt: g.expiresAt.toISOString(),
  location: g.location, ...(g.reference ? { reference: g.reference } : {}), status: g.status, recordedAt: g.recordedAt.toISOString(), recordedBy: g.recordedBy,
});
const restoreView = (r: RestoreDoc): Static<typeof RestoreView> => ({
  restoreId: r._id, generationId: r.generationId, service: r.service as Static<typeof ErasureParticipantSchema>, status: r.status, planned: r.planned,
  open: r.openRequests ?? r.planned, ...(r.openRequestsCountedAt ? { openCountedAt: r.openRequestsCountedAt.toISOString() } : {}),
  requestedAt: r.requestedAt.toISOString(), ...(r.cleanAt ? { cleanAt: r.cleanAt.toISOString() } : {}),
});

/**
 * Backups and restores (policy 4.2-backups): `/v1/retention/admin/backups…`, `/admin/restores/…`,
 * `/admin/suppressions` (operator, dpo). Record each backup generation; before using restored data,
 * start a restore and wait until it is `clean`: every erasure the generation predates has been
 * re-applied to the restored service, so no erased subject comes back.
 */
const backups: FastifyPluginAsyncTypebox = async (app) => {
  const staff = app.requireRole('operator', 'dpo');

  app.post('/admin/backups', {
    preHandler: staff,
    schema: {
      summary: 'Record a backup generation of a service\'s database (operator, dpo)', tags: ['backups'],
      body: Type.Object({
        service: ErasureParticipantSchema,
        takenAt: Type.String({ format: 'date-time' }),
        expiresAt: Type.Optional(Type.String({ format: 'date-time', description: 'Default: takenAt + BACKUP_RETENTION_DAYS' })),
        location: CountryCode,
        reference: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9_.:/@-]+$', description: 'Snapshot id or path' })),
      }, { additionalProperties: false }),
      response: { 201: GenerationView, ...errorResponses(400) },
    },
  }, async (request, reply) => {
    const b = request.body;
    const g = await app.backups.record({ service: b.service, takenAt: new Date(b.takenAt), expiresAt: b.expiresAt ? new Date(b.expiresAt) : undefined, location: b.location, reference: b.reference }, actorOf(request.user));
    return reply.code(201).send(generationView(g));
  });

  app.get('/admin/backups', {
    preHandler: staff,
    schema: {
      summary: 'Backup generations, newest first (operator, dpo)', tags: ['backups'],
      querystring: Type.Object({ service: Type.Optional(ErasureParticipantSchema), status: Type.Optional(Type.Union([Type.Literal('held'), Type.Literal('expired')])), limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ items: Type.Array(GenerationView) }), ...errorResponses(400) },
    },
  }, async (request) => {
    const q = request.query;
    const docs = await app.store.backups.find({ ...(q.service ? { service: q.service } : {}), ...(q.status ? { status: q.status } : {}) }).sort({ takenAt: -1 }).limit(q.limit).lean();
    return { items: docs.map(generationView) };
  });

  /**
   * Start a restore of a generation (errors: 404 PIPP_BACKUP_NOT_FOUND, 409 PIPP_BACKUP_EXPIRED).
   * 202: the erasures it must re-apply are under way; poll the restore until `clean`.
   */
  app.post('/admin/backups/:generationId/restores', {
    preHandler: staff,
    schema: {
      summary: 'Start a restore: re-apply every erasure the backup predates (operator, dpo)', tags: ['backups'],
      params: Type.Object({ generationId: RecordId }),
      response: { 202: RestoreView, ...errorResponses(404, 409) },
    },
  }, async (request, reply) => {
    const r = await app.backups.restore(request.params.generationId, actorOf(request.user));
    return reply.code(202).send(restoreView(await app.backups.getRestore(r._id)));
  });

  app.get('/admin/restores/:restoreId', {
    preHandler: staff,
    schema: {
      summary: 'A restore\'s progress: clean when every erased subject is erased again (operator, dpo)', tags: ['backups'],
      params: Type.Object({ restoreId: RecordId }),
      response: { 200: RestoreView, ...errorResponses(404) },
    },
  }, async (request) => restoreView(await app.backups.getRestore(request.params.restoreId)));

  app.get('/admin/suppressions', {
    preHandler: staff,
    schema: {
      summary: 'The suppression list: erased subjects a restore must not bring back (operator, dpo)', tags: ['backups'],
      querystring: Type.Object({
        subjectId: Type.Optional(SubjectId), status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('lifted')])),
        after: Type.Optional(RecordId), limit: Type.Integer({ minimum: 1, maximum: 1000, default: 200 }),
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ items: Type.Array(SuppressionView), nextAfter: Type.Optional(RecordId) }), ...errorResponses(400) },
    },
  }, async (request) => {
    const q = request.query;
    const docs = await app.store.suppressions.find({ ...(q.subjectId ? { subjectId: q.subjectId } : {}), ...(q.status ? { status: q.status } : {}), ...(q.after ? { _id: { $gt: q.after } } : {}) })
      .sort({ _id: 1 }).limit(q.limit).lean();
    const last = docs.at(-1);
    return {
      items: docs.map((s) => ({
        requestId: s._id, subjectId: s.subjectId, requestedAt: s.requestedAt.toISOString(), completedAt: s.completedAt ? s.completedAt.toISOString() : null,
        status: s.status, ...(s.liftedAt ? { liftedAt: s.liftedAt.toISOString() } : {}),
      })),
      ...(docs.length === q.limit && last ? { nextAfter: last._id } : {}),
    };
  });
};

export default backups;
