import { RecordId, VisibleText } from '@pipp/contracts';
import { Errors } from '@pipp/service-kit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../../config.js';
import { SIGNATURE_HEADER, verifySignature } from '../../domain/signature.js';
import { DsErrors } from '../../errors.js';
import type { NoticeDoc } from '../../plugins/models.js';
import { ActorOut, SubjectParams, actorOf, errors, iso } from '../common.js';

const NoticeOut = Type.Object({
  id: Type.String(), requestId: Type.String(), subjectId: Type.String(), recipientId: Type.String(), categories: Type.Array(Type.String()),
  status: Type.Union([Type.Literal('pending'), Type.Literal('acknowledged'), Type.Literal('failed')]),
  attempts: Type.Integer(), nextAttemptAt: Type.Optional(Type.String()),
  history: Type.Array(Type.Object({ at: Type.String(), outcome: Type.String(), httpStatus: Type.Optional(Type.Integer()), durationMs: Type.Integer() })),
  acknowledgedAt: Type.Optional(Type.String()), acknowledgedVia: Type.Optional(Type.String()), acknowledgedBy: Type.Optional(ActorOut), createdAt: Type.String(),
});
const SubjectNoticeOut = Type.Object({
  id: Type.String(), requestId: Type.String(), recipientId: Type.String(), categories: Type.Array(Type.String()), status: Type.String(),
  attempts: Type.Integer(), acknowledgedAt: Type.Optional(Type.String()), createdAt: Type.String(),
});

const view = (n: NoticeDoc): Static<typeof NoticeOut> => ({
  id: n._id, requestId: n.requestId, subjectId: n.subjectId, recipientId: n.recipientId, categories: n.categories, status: n.status, attempts: n.attempts,
  ...(n.status === 'pending' ? { nextAttemptAt: iso(n.nextAttemptAt)! } : {}),
  history: (n.history ?? []).map((h) => ({ at: iso(h.at)!, outcome: h.outcome, ...(h.httpStatus !== undefined ? { httpStatus: h.httpStatus } : {}), durationMs: h.durationMs })),
  ...(n.acknowledgedAt ? { acknowledgedAt: iso(n.acknowledgedAt)!, acknowledgedVia: n.acknowledgedVia! } : {}),
  ...(n.acknowledgedBy ? { acknowledgedBy: n.acknowledgedBy } : {}),
  createdAt: iso(n.createdAt)!,
});

const Params = Type.Object({ noticeId: RecordId }, { additionalProperties: false });

declare module 'fastify' {
  interface FastifyRequest { rawBody?: string }
}

/** Deletion notices to recipients and their acknowledgments (policy 4.2, recipients paragraph). */
export default async function noticeRoutes(fastify: FastifyInstance, opts: { config: Config }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { notices, recipients } = app.models;
  // This plugin's JSON bodies keep their raw text: a recipient's signature covers the exact bytes.
  const parseJson = fastify.getDefaultJsonParser('error', 'error');
  fastify.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: 64 * 1024 }, (request: FastifyRequest, body: string | Buffer, done) => {
    request.rawBody = String(body);
    parseJson(request, String(body), done);
  });

  /**
   * A recipient confirms it deleted what a notice asked, signed like our notices: `x-pipp-signature:
   * t=<unix s>,v1=<hex HMAC-SHA256(secret, "t.body")>` with its webhook secret (the current or previous
   * one), within `WEBHOOK_SIGNATURE_TOLERANCE_S`. Anonymous but authenticated by the signature;
   * idempotent. Closes the notice; once a request has no open notice, the erasure saga is told.
   * Errors: 401 PIPP_SIGNATURE_INVALID, 404 unknown notice (same answer as a bad signature's cost).
   */
  app.post('/public/deletion-notices/:noticeId/acknowledgments', {
    schema: {
      tags: ['deletion-notices'], params: Params,
      body: Type.Object({
        noticeId: RecordId,
        deletedAt: Type.Optional(Type.String({ format: 'date-time' })),
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ id: Type.String(), status: Type.String(), acknowledgedAt: Type.String() }), ...errors(400, 401, 404) },
    },
  }, async (request) => {
    const { noticeId } = request.params;
    const notice = await notices.findById(noticeId).lean();
    const recipient = notice ? await recipients.findById(notice.recipientId).lean() : null;
    if (!notice || !recipient) throw Errors.notFound('No such deletion notice');
    if (request.body.noticeId !== noticeId) throw Errors.validation('body.noticeId must name the notice in the path', { details: [{ path: '/body/noticeId', message: 'does not match the path' }] });
    const secrets = recipient.webhook.secrets.map((s) => app.sealer.open(s.sealed));
    const check = verifySignature(request.headers[SIGNATURE_HEADER] as string | undefined, request.rawBody ?? '', secrets, Math.floor(Date.now() / 1000), opts.config.WEBHOOK_SIGNATURE_TOLERANCE_S);
    if (!check.ok) throw DsErrors.badSignature(check.reason);
    const closed = await app.notices.acknowledge(noticeId, 'signed-call', { role: 'recipient', actorId: recipient._id });
    return { id: noticeId, status: closed!.status, acknowledgedAt: iso(closed!.acknowledgedAt)! };
  });

  /** Deletion notices, oldest first (operator, dpo); filter by status, request or recipient. */
  app.get('/admin/deletion-notices', {
    preHandler: app.requireRole('operator', 'dpo'),
    schema: {
      tags: ['deletion-notices'],
      querystring: Type.Object({
        status: Type.Optional(Type.Union([Type.Literal('pending'), Type.Literal('acknowledged'), Type.Literal('failed')])),
        requestId: Type.Optional(RecordId), recipientId: Type.Optional(RecordId),
        limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ notices: Type.Array(NoticeOut) }), ...errors(400, 401, 403) },
    },
  }, async (request) => {
    const q = request.query;
    const filter: Record<string, unknown> = {};
    if (q.status) filter.status = q.status;
    if (q.requestId) filter.requestId = q.requestId;
    if (q.recipientId) filter.recipientId = q.recipientId;
    const docs = await notices.find(filter).sort({ createdAt: 1 }).limit(q.limit).lean();
    return { notices: docs.map(view) };
  });

  /**
   * Records an acknowledgment received another way (letter, e-mail), with its evidence (operator, dpo).
   * Idempotent. 404 when unknown.
   */
  app.post('/admin/deletion-notices/:noticeId/acknowledgments', {
    preHandler: app.requireRole('operator', 'dpo'),
    schema: {
      tags: ['deletion-notices'], params: Params,
      body: Type.Object({ evidenceRef: VisibleText(512) }, { additionalProperties: false }),
      response: { 200: NoticeOut, ...errors(400, 401, 403, 404) },
    },
  }, async (request) => {
    const closed = await app.notices.acknowledge(request.params.noticeId, 'operator', actorOf(request));
    if (!closed) throw Errors.notFound('No such deletion notice');
    request.log.info({ noticeId: closed._id }, 'deletion acknowledged by operator record');
    return view(closed);
  });

  /** Puts a failed (or waiting) notice back for immediate delivery (operator, dpo). 404 when unknown or closed. */
  app.post('/admin/deletion-notices/:noticeId/retries', {
    preHandler: app.requireRole('operator', 'dpo'),
    schema: { tags: ['deletion-notices'], params: Params, response: { 200: NoticeOut, ...errors(400, 401, 403, 404) } },
  }, async (request) => {
    const doc = await app.notices.retry(request.params.noticeId);
    if (!doc) throw Errors.notFound('No open deletion notice with this id');
    return view(doc);
  });

  /** The notices sent to recipients on the subject's behalf and whether each confirmed deletion (subject, operator, dpo). */
  app.get('/subjects/:subjectId/deletion-notices', {
    preHandler: app.requireSubject('subjectId', ['operator', 'dpo']),
    schema: { tags: ['deletion-notices'], params: SubjectParams, response: { 200: Type.Object({ notices: Type.Array(SubjectNoticeOut) }), ...errors(400, 401, 403) } },
  }, async (request) => {
    const docs = await notices.find({ subjectId: request.params.subjectId }).sort({ createdAt: -1 }).limit(500).lean();
    return {
      notices: docs.map((n) => ({
        id: n._id, requestId: n.requestId, recipientId: n.recipientId, categories: n.categories, status: n.status, attempts: n.attempts,
        ...(n.acknowledgedAt ? { acknowledgedAt: iso(n.acknowledgedAt)! } : {}), createdAt: iso(n.createdAt)!,
      })),
    };
  });
}
