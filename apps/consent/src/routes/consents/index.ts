import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { DataCategory } from '@pipp/contracts';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { endsWithAccount } from '../../domain/catalogue.js';
import { allStopped, decide } from '../../domain/decide.js';
import { GENERAL, currentVersion } from '../../domain/policy.js';
import { parseScopeKey, scopeKey, scopeProblem } from '../../domain/scope.js';
import { ConsentErrors } from '../../errors.js';
import type { ConsentChannel, ConsentRecordDoc, LegalBasisUseDoc, NoticeDoc, PolicyVersionDoc } from '../../plugins/models.js';
import type { NewRecord } from '../../plugins/ledger.js';
import {
  AcceptBodySchema, ConsentChangesBodySchema, ConsentChangesResultSchema, Errors4xx, HistoryQuery, ReceiptSchema, RecordParams,
  RecordSchema, SubjectParams, SubjectViewSchema, Type,
} from '../../schemas.js';
import { standardNotice } from '../catalogue/index.js';
import type { Config } from '../../config.js';

const SUBJECT_CHANNELS: ConsentChannel[] = ['web', 'app', 'api'];
const STAFF_CHANNELS: ConsentChannel[] = ['operator', 'paper', 'telephone'];

/** A ledger record as the subject sees it. */
export function recordOut(d: ConsentRecordDoc, notice?: NoticeDoc | undefined) {
  return {
    recordId: d._id, seq: d.seq, kind: d.kind,
    ...(d.purpose ? { purpose: d.purpose } : {}), ...(d.scope && Object.keys(d.scope).length ? { scope: d.scope } : {}),
    ...(d.document ? { document: d.document } : {}),
    state: d.state, consentType: d.consentType, channel: d.channel, policyVersion: d.policyVersion ?? null, categories: d.categories,
    ...(d.noticeHash ? { notice: { sha256: d.noticeHash, ...(notice ? { text: notice.text } : {}) } } : {}),
    ...(d.language ? { language: d.language } : {}), recordedBy: d.actor, ...(d.evidenceRef ? { evidenceRef: d.evidenceRef } : {}),
    at: new Date(d.at).toISOString(), hash: d.hash,
  };
}

/**
 * A data subject's consents (policy 2.1.2, 2.4.2(2), VI; PIPL art. 14–16, 44, 45). Subjects reach only
 * their own (`requireSubject`); operators and the DPO reach anyone's, audited, and record on a subject's
 * behalf only with the evidence of a form or call.
 * - `GET /subjects/:subjectId/consents`: the current state: each consent, each function's availability
 *   (and why not), policy acceptances (and rights-restricting versions awaiting express consent), and
 *   processing without consent with its legal basis;
 * - `POST /subjects/:subjectId/consents`: grants and withdrawals in one call (withdrawing is the same call
 *   as granting; a withdrawal without scope withdraws the purpose and every scoped consent under it);
 *   each change is one ledger record with a consent receipt; effective at once on every instance;
 * - `POST /subjects/:subjectId/policy-acceptances`: express consent to a policy version (VI);
 * - `GET /subjects/:subjectId/history`, `…/receipts/:recordId`, `…/export`: the full ledger, one
 *   receipt, and everything as a JSON download (PIPL art. 45).
 */
export default async function consentRoutes(app: FastifyInstance, { config }: { config: Config }) {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const owner = app.requireSubject('subjectId');
  const staff = (request: FastifyRequest) => request.user.role === 'operator' || request.user.role === 'dpo';
  const auditStaff = async (request: FastifyRequest, action: string, subjectId: string) => {
    if (staff(request)) await app.audit(request, action, { subjectId });
  };
  const actorOf = (request: FastifyRequest) => (staff(request) ? { role: request.user.role as 'operator' | 'dpo', id: request.user.sub } : { role: 'subject' as const });
  const checkChannel = (request: FastifyRequest, channel: ConsentChannel, evidenceRef: string | undefined) => {
    if (staff(request)) {
      if (!STAFF_CHANNELS.includes(channel)) throw ConsentErrors.invalidConsent(`Staff record consent on a subject's behalf through one of: ${STAFF_CHANNELS.join(', ')}`);
      if (!evidenceRef) throw ConsentErrors.invalidConsent('Staff recording on a subject\'s behalf must give the evidence (evidenceRef: the signed form, the recorded call)');
    } else if (!SUBJECT_CHANNELS.includes(channel)) {
      throw ConsentErrors.invalidConsent(`A subject records consent through one of: ${SUBJECT_CHANNELS.join(', ')}`);
    }
  };
  /**
   * Staff record and read only for a data subject consent holds a ledger for (one registered and seen
   * here): 404 PIPP_SUBJECT_UNKNOWN otherwise, 410 PIPP_SUBJECT_ERASED once their account erasure began
   * (a read of an erased subject answered "never given" for everything). A subject's own token (issued
   * at registration) is trusted before their registration arrives here.
   */
  const requireKnownSubject = async (request: FastifyRequest, subjectId: string) => {
    if (!staff(request) || app.projection.subject(subjectId)) return;
    if (await app.ledger.isErased(subjectId)) throw ConsentErrors.subjectErased();
    if (!await app.models.records.exists({ subjectId })) throw ConsentErrors.unknownSubject();
  };
  const generalVersion = () => {
    const g = app.projection.document(GENERAL);
    return (g && currentVersion(g, Date.now())?.version) ?? null;
  };

  const view = async (subjectId: string) => {
    const now = Date.now();
    const ctx = app.projection.context(now);
    const subject = app.projection.subject(subjectId);
    const consents = [...(subject?.consents ?? new Map())].map(([key, e]) => {
      const { purpose, scope } = parseScopeKey(key);
      return { purpose, ...(scope ? { scope } : {}), state: e.state, recordId: e.recordId, at: new Date(e.at).toISOString(), policyVersion: e.policyVersion, categories: e.categories };
    });
    const functions = [...ctx.functions.values()].filter((f) => f.status === 'active').map((f) => {
      for (const purposeId of f.purposes) {
        const purpose = ctx.purposes.get(purposeId);
        if (!purpose) continue;
        if (purpose.requires) {
          const granted = consents.filter((c) => c.purpose === purposeId && c.scope && c.state === 'granted');
          if (!granted.length) {
            return { functionId: f.id, title: f.title, kind: f.kind, available: false, clause: purpose.policyClause ?? '2.4.2(2)', reason: `Needs a separate consent per ${purpose.requires}; none given` };
          }
          continue;
        }
        const categories = f.categories.filter((c) => purpose.categories.includes(c) && !['financial-account', 'precise-location', 'biometric', 'health', 'id-document', 'minor-data'].includes(c)) as DataCategory[];
        if (!categories.length) continue;
        const d = decide({ subjectId, service: 'consent', purpose: purposeId, categories, functionId: f.id }, ctx, subject).decision;
        if (!d.allowed) return { functionId: f.id, title: f.title, kind: f.kind, available: false, clause: d.clause, reason: d.reason };
      }
      return { functionId: f.id, title: f.title, kind: f.kind, available: true, clause: f.kind === 'basic' ? '2.1.1' : '2.1.2', reason: 'Available' };
    });
    const policies = app.projection.documents.map((doc) => {
      const a = subject?.acceptances.get(doc.documentId);
      const awaiting = doc.versions.filter((v) => v.effectiveAt <= now && v.restrictsRights && v.version > (a?.express ?? 0)).map((v) => v.version);
      return { documentId: doc.documentId, inForce: currentVersion(doc, now)?.version ?? null, acceptedExpressly: a?.express ?? 0, accepted: a?.any ?? 0, awaitingExpressConsent: awaiting };
    });
    const uses = await app.models.legalBasisUses.find({ subjectId }).lean<LegalBasisUseDoc[]>();
    const processingWithoutConsent = [
      ...[...ctx.purposes.values()].filter((p) => p.status === 'active' && p.standingBasis).map((p) => ({
        purpose: p.id, legalBasis: p.standingBasis!.legalBasis, evidenceRef: p.standingBasis!.evidenceRef, standing: true,
      })),
      ...uses.map((u) => ({
        purpose: u.purpose, legalBasis: u.legalBasis, evidenceRef: u.evidenceRef, service: u.service,
        ...(u.recipientId ? { recipientId: u.recipientId } : {}), ...(u.country ? { country: u.country } : {}),
        firstAt: new Date(u.firstAt).toISOString(), lastAt: new Date(u.lastAt).toISOString(), count: u.count, standing: false,
      })),
    ];
    return { subjectId, consents, functions, policies, processingWithoutConsent };
  };

  r.get('/subjects/:subjectId/consents', {
    preHandler: owner,
    schema: { tags: ['consents'], 'x-pipp-roles': ['subject', 'operator', 'dpo'], summary: 'Current consents, functions, policy acceptances, processing without consent', security: [{ bearer: [] }], params: SubjectParams, response: { 200: SubjectViewSchema, ...Errors4xx(400, 401, 403, 404, 410) } },
  }, async (request) => {
    await requireKnownSubject(request, request.params.subjectId);
    await auditStaff(request, 'consents.read', request.params.subjectId);
    return view(request.params.subjectId);
  });

  r.post('/subjects/:subjectId/consents', {
    preHandler: owner,
    schema: {
      tags: ['consents'], 'x-pipp-roles': ['subject', 'operator', 'dpo'], summary: 'Grant or withdraw consents (one record and receipt per change)', security: [{ bearer: [] }],
      params: SubjectParams, body: ConsentChangesBodySchema, response: { 201: ConsentChangesResultSchema, ...Errors4xx(400, 401, 403, 404, 410, 422) },
    },
  }, async (request, reply) => {
    const { subjectId } = request.params;
    const b = request.body;
    checkChannel(request, b.channel, b.evidenceRef);
    await requireKnownSubject(request, subjectId);
    const policyVersion = generalVersion();
    const actor = actorOf(request);
    const planned: NewRecord[] = [];
    // Validate every change before recording any (a refused batch records nothing).
    for (const [i, change] of b.changes.entries()) {
      const at = `/body/changes/${i}`;
      const purpose = app.projection.purposes.get(change.purpose);
      if (!purpose || purpose.status !== 'active') throw ConsentErrors.invalidConsent(`${at}: there is no active purpose ${change.purpose}`, { clause: '2.4.2(2)' });
      if (!purpose.legalBases.includes('consent')) {
        throw ConsentErrors.invalidConsent(`${at}: purpose ${purpose.id} rests on ${purpose.legalBases.join(', ')}, not on consent: there is nothing to grant or withdraw`, { clause: '2.4.2(4)' });
      }
      const problem = scopeProblem(change.scope, purpose.categories, config.HOME_REGION);
      if (problem) throw ConsentErrors.invalidConsent(`${at}/scope: ${problem}`, { clause: purpose.policyClause ?? '2.4.2(2)' });
      const scoped = change.scope && Object.keys(change.scope).length ? change.scope : undefined;
      const base = { kind: 'purpose' as const, purpose: purpose.id, consentType: 'express' as const, channel: b.channel, policyVersion, language: b.language, actor, evidenceRef: b.evidenceRef };
      if (change.state === 'granted') {
        const dimension = purpose.requires;
        const named = dimension === 'recipient' ? scoped?.recipientId : dimension === 'disclosure' ? scoped?.disclosure : dimension === 'country' ? scoped?.country : true;
        if (named === undefined && scoped?.category === undefined) throw ConsentErrors.invalidConsent(`${at}: purpose ${purpose.id} needs a separate consent per ${dimension}: name it in scope`, { clause: purpose.policyClause ?? '3.1.2' });
        const outside = (change.categories ?? []).filter((c) => !purpose.categories.includes(c));
        if (outside.length) throw ConsentErrors.invalidConsent(`${at}/categories: purpose ${purpose.id} does not process ${outside.join(', ')}`, { clause: '2.4.2(2)' });
        if (change.categories && scoped?.category) throw ConsentErrors.invalidConsent(`${at}: a consent to a sensitive category covers that category only; do not list categories`);
        const categories = scoped?.category ? [scoped.category] : change.categories ?? purpose.categories;
        // A consent to what no function collects for any more (all shut down, 2.4.2(5)) would be a
        // receipt for nothing: the same rule, for the same categories, as a decision's.
        const stopped = allStopped(app.projection.context(Date.now()), purpose.id, categories, 'any');
        if (stopped) throw ConsentErrors.invalidConsent(`${at}: every function that uses "${purpose.title}" for ${categories.join(', ')} stopped operating (${stopped.map((x) => x.title).join(', ')}): there is nothing to consent to`, { clause: '2.4.2(5)' });
        planned.push({ ...base, scope: scoped, state: 'granted', categories, noticeText: b.noticeText ?? standardNotice(purpose) });
      } else {
        if (endsWithAccount(purpose)) {
          throw ConsentErrors.closeAccountInstead(
            `${at}: "${purpose.title}" is what your account is: it is needed to perform the agreement you made by registering (PIPL art. 13(2)), so it ends with the account, not on its own. To stop it, close your account: POST /v1/retention/subjects/${subjectId}/erasure-requests with scope {"kind":"account"} (policy 4.2)`,
            { clause: '4.2' },
          );
        }
        if (change.categories) {
          throw ConsentErrors.invalidConsent(`${at}/categories: a withdrawal ends the whole consent; to keep part of it, grant it again for the categories you keep`, { clause: '2.4.2(2)' });
        }
        // Without a scope: the purpose and every scoped consent under it still granted, read from the
        // ledger itself (this instance may not have seen a grant made on another one yet).
        const keys = scoped ? [scopeKey(purpose.id, scoped)] : [purpose.id, ...await grantedScopedKeys(subjectId, purpose.id)];
        for (const key of keys) {
          const { scope } = parseScopeKey(key);
          planned.push({ ...base, scope, state: 'withdrawn', categories: [], noticeText: b.noticeText ?? `Withdrawal of consent to ${purpose.title}${scope ? ` (${Object.entries(scope).map(([k, v]) => `${k} ${String(v)}`).join(', ')})` : ''}` });
        }
      }
    }
    const docs: ConsentRecordDoc[] = [];
    for (const rec of planned) docs.push((await app.ledger.append(subjectId, rec)).doc);
    await auditStaff(request, 'consents.recorded-on-behalf', subjectId);
    return reply.code(201).send({ records: docs.map((d) => recordOut(d)), receipts: docs.map((d) => app.ledger.receipt(d, subjectId)) });
  });

  r.post('/subjects/:subjectId/policy-acceptances', {
    preHandler: owner,
    schema: {
      tags: ['consents'], 'x-pipp-roles': ['subject', 'operator', 'dpo'], summary: 'Expressly accept a policy version (VI)', security: [{ bearer: [] }],
      params: SubjectParams, body: AcceptBodySchema,
      response: { 201: Type.Object({ record: RecordSchema, receipt: ReceiptSchema }), ...Errors4xx(400, 401, 403, 404, 410, 422) },
    },
  }, async (request, reply) => {
    const { subjectId } = request.params;
    const b = request.body;
    checkChannel(request, b.channel, b.evidenceRef);
    await requireKnownSubject(request, subjectId);
    const version = await app.models.policyVersions.findById(`${b.documentId}@${b.version}`, { text: 0, clauses: 0 }).lean<PolicyVersionDoc>();
    if (!version) throw ConsentErrors.notFound(`The ${b.documentId} policy has no version ${b.version}`);
    const { doc } = await app.ledger.append(subjectId, {
      kind: 'policy', document: { documentId: b.documentId, version: b.version }, state: 'granted', consentType: 'express',
      channel: b.channel, policyVersion: b.documentId === GENERAL ? b.version : generalVersion(), categories: [], language: b.language,
      actor: actorOf(request), evidenceRef: b.evidenceRef,
      noticeText: `Read and expressly accepted version ${b.version} of the ${b.documentId} policy: ${version.summary}${version.changes.length ? ` Changes: ${version.changes.join('; ')}` : ''}`,
    });
    await auditStaff(request, 'policy.accepted-on-behalf', subjectId);
    return reply.code(201).send({ record: recordOut(doc), receipt: app.ledger.receipt(doc, subjectId) });
  });

  r.get('/subjects/:subjectId/history', {
    preHandler: owner,
    schema: {
      tags: ['consents'], 'x-pipp-roles': ['subject', 'operator', 'dpo'], summary: 'The subject\'s consent ledger, oldest first', security: [{ bearer: [] }],
      params: SubjectParams, querystring: HistoryQuery,
      response: { 200: Type.Object({ records: Type.Array(RecordSchema), nextAfterSeq: Type.Union([Type.Integer(), Type.Null()]) }), ...Errors4xx(400, 401, 403, 404, 410) },
    },
  }, async (request) => {
    const { subjectId } = request.params;
    await requireKnownSubject(request, subjectId);
    await auditStaff(request, 'consents.history-read', subjectId);
    const docs = await app.models.records.find({ subjectId, seq: { $gt: request.query.afterSeq } }).sort({ seq: 1 }).limit(request.query.limit).lean<ConsentRecordDoc[]>();
    const notices = await noticesOf(docs);
    return { records: docs.map((d) => recordOut(d, notices.get(d.noticeHash ?? ''))), nextAfterSeq: docs.length === request.query.limit ? docs[docs.length - 1]!.seq : null };
  });

  r.get('/subjects/:subjectId/receipts/:recordId', {
    preHandler: owner,
    schema: { tags: ['consents'], 'x-pipp-roles': ['subject', 'operator', 'dpo'], summary: 'The consent receipt of one record', security: [{ bearer: [] }], params: RecordParams, response: { 200: ReceiptSchema, ...Errors4xx(400, 401, 403, 404) } },
  }, async (request) => {
    const { subjectId, recordId } = request.params;
    const doc = await app.models.records.findOne({ _id: recordId, subjectId }).lean<ConsentRecordDoc>();
    if (!doc) throw ConsentErrors.notFound(`There is no record ${recordId} of this subject`);
    await auditStaff(request, 'consents.receipt-read', subjectId);
    return app.ledger.receipt(doc, subjectId);
  });

  r.get('/subjects/:subjectId/export', {
    preHandler: owner,
    schema: {
      tags: ['consents'], 'x-pipp-roles': ['subject', 'operator', 'dpo'], summary: 'Everything this service holds about the subject, as JSON (PIPL art. 45)', security: [{ bearer: [] }], params: SubjectParams,
      response: {
        200: Type.Object({
          exportedAt: Type.String(), format: Type.String(), subject: SubjectViewSchema,
          history: Type.Array(RecordSchema), receipts: Type.Array(ReceiptSchema),
        }),
        ...Errors4xx(400, 401, 403, 404, 410),
      },
    },
  }, async (request, reply) => {
    const { subjectId } = request.params;
    await requireKnownSubject(request, subjectId);
    await auditStaff(request, 'consents.exported', subjectId);
    const docs = await app.models.records.find({ subjectId }).sort({ seq: 1 }).lean<ConsentRecordDoc[]>();
    const notices = await noticesOf(docs);
    void reply.header('content-disposition', `attachment; filename="consent-export-${subjectId}.json"`);
    return {
      exportedAt: new Date().toISOString(), format: 'pipp-consent-export/1', subject: await view(subjectId),
      history: docs.map((d) => recordOut(d, notices.get(d.noticeHash ?? ''))), receipts: docs.map((d) => app.ledger.receipt(d, subjectId)),
    };
  });

  async function grantedScopedKeys(subjectId: string, purpose: string): Promise<string[]> {
    const docs = await app.models.records.find({ subjectId, purpose, kind: 'purpose' }, { scopeKey: 1, seq: 1, state: 1 }).sort({ seq: 1 }).lean<Pick<ConsentRecordDoc, 'scopeKey' | 'seq' | 'state'>[]>();
    const latest = new Map<string, string>();
    for (const d of docs) if (d.scopeKey) latest.set(d.scopeKey, d.state);
    return [...latest].filter(([k, state]) => k !== purpose && state === 'granted').map(([k]) => k);
  }

  async function noticesOf(docs: ConsentRecordDoc[]) {
    const hashes = [...new Set(docs.map((d) => d.noticeHash).filter((h): h is string => Boolean(h)))];
    const found = hashes.length ? await app.models.notices.find({ _id: { $in: hashes } }).lean<NoticeDoc[]>() : [];
    return new Map(found.map((n) => [n._id, n]));
  }
}
