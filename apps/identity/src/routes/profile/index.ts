import { Errors } from '@pipp/service-kit';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../config.js';
import { contactChannels } from '../../domain/contact.js';
import { accountNameKey, normalizeAccountName, normalizeText, planProfileUpdate, type FieldVerdict } from '../../domain/profile.js';
import { IdentityErrors } from '../../errors.js';
import { CONTACT_FIELDS, PROFILE_FIELDS, setsOptionalProfile, type Account } from '../../plugins/models.js';
import { errors, SubjectIdParam } from '../../schemas.js';
import { notErasedSince, requireProfileConsent, withdrawnMeanwhile } from '../helpers.js';

const nullable = (s: ReturnType<typeof Type.String>) => Type.Optional(Type.Union([s, Type.Null()]));

/** Each optional profile field: a string sets or corrects it, null removes it (policy 2.4.1(1)ii, 4.1). */
export const ProfilePatchSchema = Type.Object({
  nickname: nullable(Type.String({ maxLength: 64 })),
  avatarUrl: nullable(Type.String({ maxLength: 2048, format: 'uri', pattern: '^https://' })),
  accountName: nullable(Type.String({ maxLength: 64 })),
  bio: nullable(Type.String({ maxLength: 400 })),
  gender: nullable(Type.String({ maxLength: 64 })),
  birthDate: nullable(Type.String({ format: 'date' })),
  email: nullable(Type.String({ maxLength: 254, format: 'email' })),
  pushEndpoint: nullable(Type.String({ maxLength: 2048, format: 'uri', pattern: '^https://' })),
  postalAddress: nullable(Type.String({ maxLength: 500 })),
  /** The verified number is required: it can be changed (phone-change) but never removed here. */
  phone: Type.Optional(Type.Union([Type.Null(), Type.String({ maxLength: 40 })])),
}, { additionalProperties: false, minProperties: 1 });

export const ProfileView = Type.Object({
  subjectId: Type.String(),
  phone: Type.String({ description: 'Verified mobile number, E.164 (required, 2.4.1(1)i)' }),
  profile: Type.Object(Object.fromEntries(PROFILE_FIELDS.map((f) => [f, Type.Optional(Type.String())])), { additionalProperties: false }),
  hasPassword: Type.Boolean(),
  mustResetPassword: Type.Boolean(),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
  policyAcknowledged: Type.Optional(Type.Object({ documentId: Type.String(), version: Type.Integer(), at: Type.String({ format: 'date-time' }) })),
}, { additionalProperties: false });

export function profileView(a: Account & { passwordHash?: string }) {
  return {
    subjectId: a._id, phone: a.phone,
    profile: Object.fromEntries(PROFILE_FIELDS.filter((f) => a.profile?.[f] !== undefined && a.profile?.[f] !== null).map((f) => [f, a.profile[f]!])),
    hasPassword: !!a.passwordHash, mustResetPassword: !!a.mustResetPassword,
    createdAt: a.createdAt.toISOString(), updatedAt: a.updatedAt.toISOString(),
    ...(a.policyAck ? { policyAcknowledged: { documentId: a.policyAck.documentId, version: a.policyAck.version, at: a.policyAck.at.toISOString() } } : {}),
  };
}

const LIMITS: Record<string, number> = { nickname: 32, bio: 200, gender: 32, postalAddress: 300 };

/** Validates and normalizes each field of a patch (NFC, no control characters, sensible values). */
function validatePatch(patch: Record<string, string | null | undefined>): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  const problems: { path: string; message: string }[] = [];
  for (const [field, value] of Object.entries(patch)) {
    if (field === 'phone' || value === undefined) continue;
    if (value === null) { out[field] = null; continue; }
    let v: FieldVerdict;
    if (field === 'accountName') v = normalizeAccountName(value);
    else if (field === 'birthDate') {
      const d = Date.parse(value);
      v = Number.isNaN(d) || d > Date.now() || d < Date.parse('1900-01-01') ? { ok: false, reason: 'must be a past date after 1900-01-01' } : { ok: true, value };
    } else if (field === 'email') v = normalizeText(value.toLowerCase(), 254);
    else v = normalizeText(value, LIMITS[field] ?? 2048);
    if (v.ok) out[field] = v.value; else problems.push({ path: `/body/${field}`, message: v.reason });
  }
  if (problems.length) throw Errors.validation(problems.map((p) => `${p.path} ${p.message}`).join('; '), { details: problems });
  return out;
}

/**
 * Applies a profile patch to an account: reserves a new account name (unique ignoring case), writes
 * the change with a `privacy.subject.contact-changed` event when a contact channel changed (same
 * document, outbox), records an audit entry with the changed field names. Returns the changed fields.
 * Optional profile data lands only if no withdrawal erased the profile since `read`, the account as
 * read before the consent check (see `eraseOptionalProfile`). An account's patches run one at a time
 * (its document lock), each on the account as it is then: a rename reserves, writes and releases the
 * holder's other names before the next begins, and each contact-changed event lists every channel (in
 * parallel, a rename released a name another had just written, so a second subject could take it, and
 * an e-mail and an address set together left one out of incident's directory).
 * @throws PIPP_ACCOUNT_NAME_TAKEN (409); PIPP_NOT_FOUND (404); PIPP_CONSENT_REQUIRED (403) when the
 * patch sets optional profile data and a withdrawal of the profile consent erased the profile since.
 */
export async function applyProfilePatch(app: FastifyInstance, request: import('fastify').FastifyRequest, read: Account, patch: Record<string, string | null>) {
  return app.outbox.withDocument(app.models.accounts, read._id, async () => {
    const account = await app.models.accounts.findOne({ _id: read._id, status: 'active' }).lean();
    if (!account) throw IdentityErrors.notFound('No such account');
    return applyLocked(app, request, account, read, patch);
  });
}

async function applyLocked(app: FastifyInstance, request: import('fastify').FastifyRequest, account: Account, read: Account, patch: Record<string, string | null>) {
  const plan = planProfileUpdate(account.profile as Record<string, string | undefined>, patch);
  if (!plan.changed.length) return [];
  const names = app.models.accountNames;
  const newName = plan.changed.includes('accountName') ? patch.accountName : undefined;
  if (newName) {
    try {
      await names.create({ _id: accountNameKey(newName), subjectId: account._id });
    } catch (err) {
      if ((err as { code?: number }).code !== 11000) throw err;
      const holder = await names.findById(accountNameKey(newName)).lean();
      if (holder?.subjectId !== account._id) throw IdentityErrors.accountNameTaken();
    }
  }
  const nextProfile = { ...account.profile } as Record<string, string | undefined>;
  for (const f of plan.changed) nextProfile[f] = patch[f] ?? undefined;
  const contactChanged = plan.changed.some((f) => (CONTACT_FIELDS as string[]).includes(f));
  const update: Record<string, unknown> = { $set: { ...plan.set, updatedAt: new Date() } };
  if (Object.keys(plan.unset).length) update.$unset = plan.unset;
  // Optional profile data lands only on the account as read before the consent check: a withdrawal of
  // the profile consent that erased the profile since wins (the check may have come before it).
  const addsOptional = setsOptionalProfile(patch, plan.changed);
  const filter = { _id: account._id, status: 'active', ...(addsOptional ? notErasedSince(read) : {}) };
  const written = await app.outbox.update(app.models.accounts, filter, update, contactChanged ? [
    app.outbox.entry('privacy.subject.contact-changed', { subject: account._id, payload: { subjectId: account._id, channels: contactChannels(account.phone, nextProfile) } }),
  ] : []);
  if (!written) {
    if (newName) await names.deleteOne({ _id: accountNameKey(newName), subjectId: account._id });
    if (!addsOptional) throw IdentityErrors.notFound('No such account');
    throw withdrawnMeanwhile('nothing');
  }
  // Released by holder, not by key: whatever this account reserved before (also under an earlier key function).
  if (plan.changed.includes('accountName')) {
    await names.deleteMany({ subjectId: account._id, ...(newName ? { _id: { $ne: accountNameKey(newName) } } : {}) });
  }
  await app.audit.record(request, account._id, 'profile-updated', plan.changed);
  return plan.changed;
}

/**
 * Profile (policy 2.4.1(1)ii optional information; 4.1 / 4.1.2 query, correct, supplement):
 * - `GET /v1/identity/subjects/:subjectId/profile`: the subject, or an operator/DPO (audited).
 * - `PATCH …/profile`: each field set, corrected or removed (null); names NFC-normalized, control
 *   characters refused. Setting a field other than a contact channel needs the subject's consent to
 *   purpose `profile` (403 PIPP_CONSENT_REQUIRED, clause 2.4.1(1)ii, storing nothing; 503 when consent
 *   cannot answer); removing never does, nor do contact channels (they serve the basic notices,
 *   5.4.2). Removing the phone number: 409 PIPP_REQUIRED_DATA (clause 2.4.1(1)i: only by closing the
 *   account); changing it goes through the phone-change flow. The subject, or an operator/DPO
 *   correcting on their behalf (audited with the `x-pipp-reason` header).
 */
const profileRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app) => {
  const load = async (subjectId: string) => {
    const a = await app.models.accounts.findOne({ _id: subjectId, status: 'active' }).select('+passwordHash').lean();
    if (!a) throw IdentityErrors.notFound('No such account');
    return a;
  };

  app.get('/subjects/:subjectId/profile', {
    preHandler: app.requireSubject(),
    schema: { tags: ['profile'], summary: "Read a subject's account and profile", security: [{ bearer: [] }], params: SubjectIdParam, response: { 200: ProfileView, ...errors(401, 403, 404) } },
  }, async (request) => {
    const a = await load(request.params.subjectId);
    await app.audit.recordAccess(request, a._id, 'profile');
    return profileView(a);
  });

  app.patch('/subjects/:subjectId/profile', {
    preHandler: app.requireSubject(),
    schema: { tags: ['profile'], summary: 'Correct, supplement or remove profile fields', security: [{ bearer: [] }], params: SubjectIdParam, body: ProfilePatchSchema, response: { 200: ProfileView, ...errors(400, 401, 403, 404, 409, 415, 503) } },
  }, async (request) => {
    if (request.body.phone === null) {
      throw IdentityErrors.requiredData('The mobile number is required for an account; it can be changed, or removed only by closing the account', { clause: '2.4.1(1)i', details: [{ path: '/body/phone', message: 'required data cannot be removed' }] });
    }
    if (request.body.phone !== undefined) {
      throw Errors.validation('Change the mobile number through POST …/phone-change (it must be verified)', { clause: '2.4.1(1)i', details: [{ path: '/body/phone', message: 'use the phone-change flow' }] });
    }
    const patch = validatePatch(request.body as Record<string, string | null | undefined>);
    const a = await load(request.params.subjectId);
    if (setsOptionalProfile(patch)) await requireProfileConsent(app, a, ['profile']);
    await applyProfilePatch(app, request, a, patch);
    return profileView(await load(a._id));
  });
};
export default profileRoutes;
