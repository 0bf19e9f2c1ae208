import { CountryCode, DataCategorySchema, PurposeId, RecordId, VisibleText } from '@pipp/contracts';
import { Errors } from '@pipp/service-kit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../config.js';
import { isCrossBorder, normalizeRegion } from '../../domain/regions.js';
import { validateWebhookUrl } from '../../domain/webhook-url.js';
import { DsErrors } from '../../errors.js';
import { Sealer } from '../../plugins/crypto.js';
import type { RecipientDoc } from '../../plugins/models.js';
import { ActorOut, actorOf, errors, iso, newId } from '../common.js';

const Contact = Type.Object({
  department: Type.Optional(VisibleText(200)),
  email: Type.Optional(Type.String({ format: 'email', maxLength: 254 })),
  phone: Type.Optional(VisibleText(32)),
  address: Type.Optional(VisibleText(500)),
}, { additionalProperties: false, description: 'How data subjects and we reach the recipient (PIPL art. 23)' });

const OwnPolicy = Type.Object({
  applies: Type.Boolean({ description: 'Policy 1.2: the recipient processes under its own privacy policy, not ours' }),
  url: Type.Optional(Type.String({ format: 'uri', maxLength: 2048 })),
}, { additionalProperties: false });

const AttestationIn = Type.Object({
  protectsNoLessThanPolicy: Type.Boolean({ description: 'The recipient attests it protects PI no less than this policy (3.1, 5.3)' }),
  documentRef: VisibleText(256, { description: 'Reference of the signed attestation or data processing agreement' }),
  attestedBy: VisibleText(200, { description: 'Role or title of the signatory at the recipient' }),
}, { additionalProperties: false });

const RecipientIn = Type.Object({
  legalName: VisibleText(300),
  country: CountryCode,
  contact: Contact,
  purposes: Type.Array(PurposeId, { minItems: 1, maxItems: 32, uniqueItems: true }),
  categories: Type.Array(DataCategorySchema, { minItems: 1, maxItems: 32, uniqueItems: true }),
  ownPolicy: OwnPolicy,
  attestation: Type.Optional(AttestationIn),
  webhookUrl: Type.String({ minLength: 1, maxLength: 2048, description: 'Where deletion notices are POSTed (https; host on the allow-list)' }),
}, { additionalProperties: false });

const RecipientPatch = Type.Partial(Type.Object({
  legalName: VisibleText(300),
  contact: Contact,
  purposes: Type.Array(PurposeId, { minItems: 1, maxItems: 32, uniqueItems: true }),
  categories: Type.Array(DataCategorySchema, { minItems: 1, maxItems: 32, uniqueItems: true }),
  ownPolicy: OwnPolicy,
  attestation: AttestationIn,
  webhookUrl: Type.String({ minLength: 1, maxLength: 2048 }),
  status: Type.Union([Type.Literal('active'), Type.Literal('suspended')]),
}), { additionalProperties: false, minProperties: 1 });

const RecipientOut = Type.Object({
  id: RecordId,
  legalName: Type.String(),
  country: Type.String(),
  crossBorder: Type.Boolean({ description: 'Outside the home region (policy 5.3)' }),
  contact: Contact,
  purposes: Type.Array(Type.String()),
  categories: Type.Array(Type.String()),
  ownPolicy: OwnPolicy,
  attestation: Type.Object({ protectsNoLessThanPolicy: Type.Boolean(), documentRef: Type.String(), attestedBy: Type.String(), attestedAt: Type.String(), recordedBy: ActorOut }),
  webhookUrl: Type.String(),
  secretIds: Type.Array(Type.String(), { description: 'Ids of the webhook secrets in use, newest first (the secrets are never shown again)' }),
  status: Type.String(),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});

const PublicRecipientOut = Type.Object({
  id: Type.String(), legalName: Type.String(), country: Type.String(), crossBorder: Type.Boolean(), contact: Contact,
  purposes: Type.Array(Type.String()), categories: Type.Array(Type.String()), ownPolicy: OwnPolicy,
}, { description: 'A recipient as every data subject may see it before consenting (PIPL art. 23)' });

const Params = Type.Object({ recipientId: RecordId }, { additionalProperties: false });
const WithSecret = Type.Object({ recipient: RecipientOut, webhookSecret: Type.String({ description: 'Shown once: the recipient verifies our signatures and signs its acknowledgments with it' }) });

/** Recipients: third parties that may receive PI (policy 3.1, 1.2, 5.3; PIPL art. 23). */
export default async function recipientRoutes(fastify: FastifyInstance, opts: { config: Config }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { recipients } = app.models;
  const home = opts.config.HOME_REGION;
  const staff = app.requireRole('operator', 'dpo');

  const view = (r: RecipientDoc): Static<typeof RecipientOut> => ({
    id: r._id, legalName: r.legalName, country: r.country, crossBorder: isCrossBorder(r.country, home), contact: r.contact ?? {},
    purposes: r.purposes, categories: r.categories, ownPolicy: r.ownPolicy,
    attestation: { ...r.attestation, attestedAt: iso(r.attestation.attestedAt)! },
    webhookUrl: r.webhook.url, secretIds: r.webhook.secrets.map((s) => s.id), status: r.status,
    createdAt: iso(r.createdAt)!, updatedAt: iso(r.updatedAt)!,
  });

  const checkUrl = (url: string) => {
    const v = validateWebhookUrl(url, app.notices.policy);
    if (!v.ok) throw DsErrors.webhookRefused(`webhookUrl: ${v.reason}`, { details: [{ path: '/body/webhookUrl', message: v.reason }] });
  };
  const checkAttestation = (a: Static<typeof AttestationIn> | undefined) => {
    if (!a?.protectsNoLessThanPolicy) {
      throw DsErrors.recipientIncomplete('a recipient must attest, in a signed document (attestation.documentRef), that it protects PI no less than this policy (attestation.protectsNoLessThanPolicy: true)', { clause: '3.1' });
    }
  };
  const newSecret = () => {
    const secret = Sealer.newSecret();
    return { secret, entry: { id: newId('whs'), sealed: app.sealer.seal(secret), createdAt: new Date() } };
  };

  /**
   * Registers a recipient: legal name, country or region, contact, purposes and categories it may
   * receive, whether its own policy governs its processing (1.2), its attestation of protection no less
   * than ours (3.1, 5.3), and its webhook. Returns the webhook secret once. Roles: operator, dpo.
   * Errors: 422 PIPP_RECIPIENT_INCOMPLETE (no attestation), 422 PIPP_WEBHOOK_URL_REFUSED.
   */
  app.post('/admin/recipients', {
    preHandler: staff,
    schema: { tags: ['recipients'], body: RecipientIn, response: { 201: WithSecret, ...errors(400, 401, 403, 422) } },
  }, async (request, reply) => {
    const b = request.body;
    checkAttestation(b.attestation);
    checkUrl(b.webhookUrl);
    const { secret, entry } = newSecret();
    const now = new Date();
    const doc = await recipients.create({
      _id: newId('rcp'), legalName: b.legalName, country: normalizeRegion(b.country), contact: b.contact, purposes: b.purposes, categories: b.categories,
      ownPolicy: b.ownPolicy,
      attestation: { ...b.attestation!, attestedAt: now, recordedBy: actorOf(request) },
      webhook: { url: b.webhookUrl, secrets: [entry] }, status: 'active', createdBy: actorOf(request), createdAt: now, updatedAt: now, rev: 0,
    });
    request.log.info({ recipientId: doc._id }, 'recipient registered');
    return reply.code(201).send({ recipient: view(doc.toObject()), webhookSecret: secret });
  });

  /** Lists recipients (operator, dpo); `status` filters. */
  app.get('/admin/recipients', {
    preHandler: staff,
    schema: {
      tags: ['recipients'],
      querystring: Type.Object({ status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('suspended')])) }, { additionalProperties: false }),
      response: { 200: Type.Object({ recipients: Type.Array(RecipientOut) }), ...errors(400, 401, 403) },
    },
  }, async (request) => {
    const filter = request.query.status ? { status: request.query.status } : {};
    const docs = await recipients.find(filter).sort({ legalName: 1 }).limit(1000).lean();
    return { recipients: docs.map(view) };
  });

  /** One recipient (operator, dpo). 404 when unknown. */
  app.get('/admin/recipients/:recipientId', {
    preHandler: staff,
    schema: { tags: ['recipients'], params: Params, response: { 200: RecipientOut, ...errors(400, 401, 403, 404) } },
  }, async (request) => {
    const doc = await recipients.findById(request.params.recipientId).lean();
    if (!doc) throw Errors.notFound('No such recipient');
    return view(doc);
  });

  /**
   * Updates a recipient (operator, dpo): contact, purposes, categories, own-policy flag, a new
   * attestation, webhook URL, or status (`suspended` stops all sharing with it). A new attestation must
   * still attest protection no less than this policy.
   */
  app.patch('/admin/recipients/:recipientId', {
    preHandler: staff,
    schema: { tags: ['recipients'], params: Params, body: RecipientPatch, response: { 200: RecipientOut, ...errors(400, 401, 403, 404, 422) } },
  }, async (request) => {
    const b = request.body;
    const set: Record<string, unknown> = { updatedAt: new Date() };
    for (const k of ['legalName', 'contact', 'purposes', 'categories', 'ownPolicy', 'status'] as const) if (b[k] !== undefined) set[k] = b[k];
    if (b.attestation) {
      checkAttestation(b.attestation);
      set.attestation = { ...b.attestation, attestedAt: new Date(), recordedBy: actorOf(request) };
    }
    if (b.webhookUrl) {
      checkUrl(b.webhookUrl);
      set['webhook.url'] = b.webhookUrl;
    }
    const doc = await recipients.findOneAndUpdate({ _id: request.params.recipientId }, { $set: set, $inc: { rev: 1 } }, { new: true }).lean();
    if (!doc) throw Errors.notFound('No such recipient');
    return view(doc);
  });

  /**
   * Rotates the webhook secret (operator, dpo): notices are signed with the new one at once;
   * acknowledgments signed with the previous one are still accepted until the next rotation.
   */
  app.post('/admin/recipients/:recipientId/secret-rotations', {
    preHandler: staff,
    schema: { tags: ['recipients'], params: Params, response: { 201: WithSecret, ...errors(400, 401, 403, 404) } },
  }, async (request, reply) => {
    const current = await recipients.findById(request.params.recipientId).lean();
    if (!current) throw Errors.notFound('No such recipient');
    const { secret, entry } = newSecret();
    const doc = await recipients.findOneAndUpdate(
      { _id: current._id, rev: current.rev },
      { $set: { 'webhook.secrets': [entry, ...current.webhook.secrets.slice(0, 1)], updatedAt: new Date() }, $inc: { rev: 1 } },
      { new: true },
    ).lean();
    if (!doc) throw DsErrors.conflict('The recipient changed meanwhile; retry');
    return reply.code(201).send({ recipient: view(doc), webhookSecret: secret });
  });

  /**
   * The public register of active recipients: who may receive PI, where they are, what for, and
   * whether their own policy governs their processing (1.2). Anonymous (PIPL art. 23 transparency).
   */
  app.get('/public/recipients', {
    schema: { tags: ['recipients'], response: { 200: Type.Object({ recipients: Type.Array(PublicRecipientOut) }) } },
  }, async () => {
    const docs = await recipients.find({ status: 'active' }).sort({ legalName: 1 }).limit(1000).lean();
    return {
      recipients: docs.map((r) => ({
        id: r._id, legalName: r.legalName, country: r.country, crossBorder: isCrossBorder(r.country, home), contact: r.contact ?? {},
        purposes: r.purposes, categories: r.categories, ownPolicy: r.ownPolicy,
      })),
    };
  });
}
