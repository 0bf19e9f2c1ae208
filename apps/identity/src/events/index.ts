import { holdCovers, storeIfNewer, type HoldChange } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../config.js';
import type { IdentityCategory } from '../domain/erasure.js';
import type { KeyRing } from '../plugins/keys.js';
import { OPTIONAL_PROFILE_FIELDS } from '../plugins/models.js';
import { erasureDeletions, handleErasure, snapshot } from './erasure.js';
import { handleSweep } from './sweep.js';

/**
 * identity's consumers (idempotent, dead-lettering, through the kit):
 * - `privacy.policy.published` → the current version of each policy document (registration
 *   acknowledges it, preamble);
 * - `privacy.consent.changed` → a withdrawn `personalization` consent deletes the subject's activity
 *   log (policy 2.4.1(2), 2.1.2; PIPL art. 47(1)(3): delete when consent is withdrawn); a `profile`
 *   consent withdrawn, or granted for fewer categories, erases what it no longer covers (2.4.1(1)ii;
 *   `eraseOptionalProfile`); only a record newer than the last one acted on counts (`consent_states`),
 *   and what a legal hold covers is kept isolated (`isolateHeld`);
 * - `privacy.legal-hold.changed` → the kit's legalHoldsPlugin (`subject_holds`; policy 4.1), whose
 *   releases purge what identity kept isolated under them (`purgeReleased`);
 * - `privacy.function.shutdown` → stop collecting for that function at once (policy 2.4.2(5));
 * - `privacy.erasure.requested` → the erasure participant (events/erasure.ts);
 * - `privacy.retention.sweep-requested` → the retention sweep participant (events/sweep.ts);
 * - `privacy.retention.periods-changed` → the retention periods identity shows and dates records by.
 */
export const identityEvents = fp(async function events(app: FastifyInstance, _opts: { config: Config; keys: KeyRing }) {
  const m = app.models;
  app.kafka.consume({
    name: 'policy',
    handlers: {
      'privacy.policy.published': async (event) => {
        const { documentId, version, effectiveAt } = event.payload;
        // Only ever moves forward: an older publication delivered late changes nothing.
        await m.policyVersions.updateOne({ _id: documentId, version: { $lt: version } }, { $set: { version, publishedAt: new Date(effectiveAt) } });
        await m.policyVersions.updateOne({ _id: documentId }, { $setOnInsert: { version, publishedAt: new Date(effectiveAt) } }, { upsert: true })
          .catch((err: { code?: number }) => { if (err.code !== 11000) throw err; });
      },
    },
  });
  app.kafka.consume({
    name: 'consent',
    handlers: {
      'privacy.consent.changed': async (event) => {
        const { subjectId, purpose, state, scope, categories, at, recordId } = event.payload;
        if (scope || (purpose !== 'profile' && purpose !== 'personalization')) return;
        // Only the latest record counts: one older than what identity acted on (a late or replayed
        // withdrawal after a newer grant) erases nothing.
        if (!await storeIfNewer(m.consentStates, `${subjectId}:${purpose}`, 'at', { subjectId, at: new Date(at), state })) return;
        if (purpose === 'profile') {
          // A withdrawal, or a grant narrowed to fewer categories: erase what is no longer covered.
          const lost = (['profile', 'credentials'] as const).filter((c) => state === 'withdrawn' || (categories !== undefined && !categories.includes(c)));
          if (lost.length) await eraseOptionalProfile(app, subjectId, lost, recordId);
        } else if (state === 'withdrawn') {
          await isolateHeld(app, subjectId, ['activity-log'], null, recordId);
          const res = await m.activity.deleteMany({ subjectId });
          if (res.deletedCount) await app.audit.record(null, subjectId, 'activity-deleted:consent-withdrawn', ['activity-log']);
        }
      },
      'privacy.function.shutdown': async (event) => {
        const { functionId, shutdownId, effectiveAt, title } = event.payload;
        await m.shutdowns.updateOne({ _id: functionId }, { $set: { shutdownId, effectiveAt: new Date(effectiveAt), title } }, { upsert: true });
      },
    },
  });
  const deletions = erasureDeletions(app);
  app.kafka.consume({
    name: 'erasure',
    // 16 keys at once (each subject's events in order); the erasures in hand delete from each
    // collection together.
    keyConcurrency: 16,
    // An erasure is answered from its own record per request id (a repeat gets the same reply).
    idempotent: ['privacy.erasure.requested'],
    handlers: {
      'privacy.erasure.requested': async (event) => handleErasure(app, event, deletions),
      'privacy.retention.sweep-requested': async (event) => handleSweep(app, event),
      // The periods in force, announced by retention at its start and on every change (policy 5.1, 5.2).
      'privacy.retention.periods-changed': async (event) => app.retentionPeriods.apply({ sweepId: event.id, ...event.payload }),
    },
  });
}, { name: 'identity-events', dependencies: ['identity-models', 'identity-sessions', 'identity-audit'] });

/**
 * Erases the optional profile once the subject's consent to purpose `profile` no longer covers it
 * (withdrawn, or granted again for fewer categories; policy 2.4.1(1)ii, 2.1.2; PIPL art. 47(1)(3)):
 * for category `profile`, the profile fields that are not contact channels (nickname, picture,
 * account name and its reservation, bio, gender, birth date); for `credentials`, the login password.
 * Contact channels stay (they serve the basic notices, 5.4.2), and so does the account: the subject
 * signs in with a one-time code. Every such field is removed, whatever a read saw (a write may have
 * landed since), and `profileErasedAt` is set, so that a profile write whose consent check came before
 * this does not land after it (those writes are conditional on it). Audited with what was there.
 * What a legal hold covers is copied into isolation first (`isolateHeld`).
 */
export async function eraseOptionalProfile(app: FastifyInstance, subjectId: string, categories: readonly ('profile' | 'credentials')[], recordId: string): Promise<void> {
  const m = app.models;
  const fields = categories.includes('profile') ? OPTIONAL_PROFILE_FIELDS : [];
  const password = categories.includes('credentials');
  await app.outbox.withDocument(m.accounts, subjectId, async () => {
    const account = await m.accounts.findOne({ _id: subjectId, status: 'active' }).select('+passwordHash').lean();
    if (!account) return;
    await isolateHeld(app, subjectId, categories, account, recordId);
    const now = new Date();
    if (fields.length) await m.accountNames.deleteMany({ subjectId });
    await m.accounts.updateOne({ _id: subjectId, status: 'active' }, {
      $unset: Object.fromEntries([...fields.map((f) => `profile.${f}`), ...(password ? ['passwordHash', 'passwordSetAt'] : [])].map((k) => [k, ''])),
      $set: { updatedAt: now, profileErasedAt: now },
    });
    const erased = [...fields.filter((f) => account.profile?.[f] !== undefined && account.profile?.[f] !== null), ...(password && account.passwordHash ? ['password'] : [])];
    if (erased.length) await app.audit.record(null, subjectId, 'profile-erased:consent-withdrawn', erased);
  });
}

/**
 * Before identity deletes PI outside the erasure saga (a consent withdrawn: PIPL art. 47(1)(3)),
 * copies what an active legal hold covers among `categories` into isolation (`legal_holds`, with the
 * hold's basis and its end as purge date; policy 4.1 "exceptions stipulated by laws and regulations"),
 * as the saga's erasure does; the live data then goes as usual, so processing stops either way. Both
 * hold modes keep it (`block` refuses the saga's erasures; a withdrawal is not refused). Idempotent per
 * consent record and category. Audited as `kept:legal-hold`.
 * @returns the categories kept.
 */
export async function isolateHeld(app: FastifyInstance, subjectId: string, categories: readonly IdentityCategory[], account: Record<string, unknown> | null, recordId: string): Promise<IdentityCategory[]> {
  const m = app.models;
  const now = new Date();
  const holds = await app.legalHolds.active(subjectId, now);
  const kept: IdentityCategory[] = [];
  for (const category of categories) {
    const hold = holds.filter((h) => holdCovers(h, category)).sort((a, b) => b.purgeAt.getTime() - a.purgeAt.getTime())[0];
    if (!hold) continue;
    const data = await snapshot(app, category, subjectId, account, undefined);
    if (!data) continue;
    await m.legalHolds.updateOne({ _id: `${recordId}:${category}` }, {
      $setOnInsert: { subjectId, requestId: recordId, category, legalBasis: hold.legalBasis, evidenceRef: hold.evidenceRef, purgeAt: hold.purgeAt, data, isolatedAt: now },
    }, { upsert: true });
    kept.push(category);
  }
  if (kept.length) await app.audit.record(null, subjectId, 'kept:legal-hold', kept);
  return kept;
}

/**
 * What identity keeps isolated under a hold that was released (policy 4.1, 5.1: kept only while the
 * law requires): the copies of the subject's categories it covers that carry its basis and evidence (as
 * a withdrawal or an erasure isolated them). Each is purged, or, when another active hold covers it
 * too, kept under that one (its basis, evidence and end), so that the other's release finds it.
 * Audited as `released:legal-hold`. A fresh-clone trial saw a released hold's copy kept to its
 * original end; a breaker, a copy outlive both of two overlapping holds.
 */
export async function purgeReleased(app: FastifyInstance, h: HoldChange): Promise<void> {
  const m = app.models;
  const now = new Date();
  const others = (await app.legalHolds.active(h.subjectId, now)).filter((o) => o._id !== h.holdId);
  const kept = (await m.legalHolds.find({ subjectId: h.subjectId }, { data: 0 }).lean())
    .filter((k) => k.legalBasis === h.legalBasis && k.evidenceRef === h.evidenceRef && holdCovers(h, k.category));
  const purged: string[] = [];
  for (const k of kept) {
    const next = others.find((o) => holdCovers(o, k.category));
    if (next) await m.legalHolds.updateOne({ _id: k._id }, { $set: { legalBasis: next.legalBasis, evidenceRef: next.evidenceRef, purgeAt: next.purgeAt } });
    else if ((await m.legalHolds.deleteOne({ _id: k._id })).deletedCount) purged.push(k.category);
  }
  if (purged.length) await app.audit.record(null, h.subjectId, 'released:legal-hold', [...new Set(purged)]);
}
