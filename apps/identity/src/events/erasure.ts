import type { EventEnvelope } from '@pipp/contracts';
import { subjectDeletion } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import { planErasure, type IdentityCategory } from '../domain/erasure.js';
import { OTP_PURPOSES } from '../domain/otp.js';
import { CONTACT_FIELDS, OPTIONAL_PROFILE_FIELDS } from '../plugins/models.js';

type Counts = { erased: number; anonymized: number; kept: number };

/**
 * Deletes a subject's documents in each collection keyed by `subjectId`, together with the other
 * erasures in hand (one read and one delete per collection for all of them; the kit's
 * `subjectDeletion`).
 */
export function erasureDeletions(app: FastifyInstance) {
  const m = app.models;
  return {
    sessions: subjectDeletion(m.sessions), devices: subjectDeletion(m.devices), signIns: subjectDeletion(m.signIns),
    challenges: subjectDeletion(m.challenges), activity: subjectDeletion(m.activity), phoneChanges: subjectDeletion(m.phoneChanges),
    audit: subjectDeletion(m.audit),
  };
}
export type ErasureDeletions = ReturnType<typeof erasureDeletions>;

/**
 * Erasure participant (DESIGN.md saga; policy 4.1, 4.2, 5.1; PIPL art. 47): erases or anonymizes what
 * identity holds for the subject within the request's scope, keeps what a legal hold names (copied,
 * isolated, with basis and purge date, into `legal_holds`), ends every session, and replies with
 * counts through the outbox. A request it already handled is answered again with the same counts
 * (redeliveries carry a higher `attempt`) and changes nothing.
 */
export async function handleErasure(app: FastifyInstance, event: EventEnvelope<'privacy.erasure.requested'>, deletions: ErasureDeletions): Promise<void> {
  const p = event.payload;
  if (p.participants && !p.participants.includes('identity')) return;
  const m = app.models;
  const reply = (counts: Counts, kept: { category: string; legalBasis: string; purgeAt: string; reason: string }[]) => app.outbox.entry('privacy.erasure.participant-replied', {
    subject: p.subjectId, correlationId: event.correlationId,
    payload: { requestId: p.requestId, subjectId: p.subjectId, participant: 'identity', attempt: p.attempt, status: 'completed', counts, kept: kept as never },
  });
  const done = await m.erasures.findById(p.requestId).lean();
  if (done) {
    await app.outbox.update(m.erasures, { _id: p.requestId }, { $push: { attempts: p.attempt } }, [reply(done.counts, done.kept)]);
    return;
  }

  const plan = planErasure(p.scope, p.legalHolds);
  const counts: Counts = { erased: 0, anonymized: 0, kept: 0 };
  const kept: { category: string; legalBasis: string; purgeAt: string; reason: string }[] = [];
  const subjectId = p.subjectId;
  const account = await m.accounts.findById(subjectId).select('+passwordHash').lean();
  const phone = account && account.status === 'active' ? account.phone : undefined;
  const has = (c: IdentityCategory) => plan.categories.includes(c);

  // 1. Copy what the law requires to keep into isolation, before anything is erased. A run that
  // follows one which failed half-way finds the copy made then (the data itself may be gone by now).
  for (const [category, hold] of plan.held) {
    const id = `${p.requestId}:${category}`;
    if (!(await m.legalHolds.exists({ _id: id }))) {
      const data = await snapshot(app, category, subjectId, account, phone);
      if (!data) continue;
      await m.legalHolds.updateOne({ _id: id }, {
        $setOnInsert: { subjectId, requestId: p.requestId, category, legalBasis: hold.legalBasis, evidenceRef: hold.evidenceRef, purgeAt: new Date(hold.purgeAt), data, isolatedAt: new Date() },
      }, { upsert: true });
    }
    counts.kept += 1;
    kept.push({ category, legalBasis: hold.legalBasis, purgeAt: hold.purgeAt, reason: `Kept isolated from processing under a legal hold (${hold.evidenceRef.slice(0, 200)})` });
  }

  // 2. Sessions: every token stops working everywhere, then the records go.
  if (has('session')) {
    await app.sessions.revokeAll(subjectId, 'erasure');
    counts.erased += await deletions.sessions.erase(subjectId);
  }
  if (has('device-info')) {
    const [devices, signIns, challenges] = await Promise.all([deletions.devices.erase(subjectId), deletions.signIns.erase(subjectId), deletions.challenges.erase(subjectId)]);
    counts.erased += devices + signIns + challenges;
  }
  if (has('activity-log')) counts.erased += await deletions.activity.erase(subjectId);
  if (has('identity-verification')) {
    counts.erased += await deletions.phoneChanges.erase(subjectId);
    if (phone) {
      const key = app.security.phoneKey(phone);
      counts.erased += (await m.otpCodes.deleteMany({ _id: { $in: OTP_PURPOSES.map((x) => `${x}:${key}`) } })).deletedCount;
      counts.erased += (await m.smsSink.deleteMany({ to: phone })).deletedCount;
      await m.counters.deleteMany({ _id: { $regex: `^(signin|otp-num):${key}` } });
    }
  }

  // 3. The account document: closed and anonymized, or the categories in scope removed from it.
  if (account && account.status === 'active') {
    const unset: Record<string, ''> = {};
    const fieldsOf = (c: IdentityCategory) => (c === 'profile' ? OPTIONAL_PROFILE_FIELDS : c === 'contact-channel' ? CONTACT_FIELDS : []);
    if (plan.closesAccount) {
      if (account.profile?.accountName) await m.accountNames.deleteMany({ subjectId });
      const notBefore = new Date(Math.ceil(Date.now() / 1000) * 1000 + 1000).toISOString();
      app.revocations.apply({ subjectId, notBefore });
      await app.outbox.update(m.accounts, { _id: subjectId, status: 'active' }, {
        $set: { phone: `erased:${subjectId}`, status: 'erased', erasedAt: new Date(), updatedAt: new Date(), profile: {}, leakReports: [], mustResetPassword: false },
        $unset: { passwordHash: '', passwordSetAt: '', phoneRegion: '' },
      }, [app.outbox.entry('privacy.session.revoked', { subject: subjectId, payload: { subjectId, notBefore, reason: 'erasure' } })]);
      counts.anonymized += 1;
    } else {
      let n = 0;
      for (const c of plan.categories) {
        for (const f of fieldsOf(c)) if (account.profile?.[f] !== undefined) { unset[`profile.${f}`] = ''; n += 1; }
      }
      if (has('credentials') && account.passwordHash) { unset.passwordHash = ''; unset.passwordSetAt = ''; n += 1; }
      if (has('profile') && account.profile?.accountName) await m.accountNames.deleteMany({ subjectId });
      if (n) {
        const contactGone = has('contact-channel');
        await app.outbox.update(m.accounts, { _id: subjectId }, { $unset: unset, $set: { updatedAt: new Date() } }, contactGone ? [
          app.outbox.entry('privacy.subject.contact-changed', { subject: subjectId, payload: { subjectId, channels: { sms: account.phone, telephone: account.phone } } }),
        ] : []);
        counts.erased += n;
      }
    }
  }
  if (plan.closesAccount) {
    counts.erased += await deletions.audit.erase(subjectId);
    // Bookkeeping that names the subject: the consents identity acted on.
    await Promise.all(['profile', 'personalization'].map((purpose) => m.consentStates.deleteOne({ _id: `${subjectId}:${purpose}` })));
  } else await app.audit.record(null, subjectId, 'erased', plan.categories, { role: 'service', id: 'retention' });

  try {
    await app.outbox.insert(m.erasures, { _id: p.requestId, subjectId, counts, kept, completedAt: new Date(), attempts: [p.attempt] }, [reply(counts, kept)]);
  } catch (err) {
    if ((err as { code?: number }).code !== 11000) throw err; // handled concurrently: that reply stands
  }
  app.log.info({ requestId: p.requestId, counts }, 'erasure handled');
}

/** What a legal hold keeps of a category (isolated copy), or null when identity holds none of it. */
export async function snapshot(app: FastifyInstance, category: IdentityCategory, subjectId: string, account: Record<string, unknown> | null, phone: string | undefined): Promise<Record<string, unknown> | null> {
  const m = app.models;
  const profile = (account?.profile ?? {}) as Record<string, unknown>;
  switch (category) {
    case 'phone-number': return phone ? { phone } : null;
    case 'profile': {
      const p = Object.fromEntries(Object.entries(profile).filter(([k]) => !(CONTACT_FIELDS as string[]).includes(k)));
      return Object.keys(p).length ? { profile: p } : null;
    }
    case 'contact-channel': {
      const p = Object.fromEntries(Object.entries(profile).filter(([k]) => (CONTACT_FIELDS as string[]).includes(k)));
      return Object.keys(p).length ? { contact: p } : null;
    }
    case 'credentials': return account?.passwordSetAt ? { passwordSetAt: account.passwordSetAt } : null;
    case 'session': {
      const rows = await m.sessions.find({ subjectId }, { refreshHash: 0, previous: 0 }).lean();
      return rows.length ? { sessions: rows } : null;
    }
    case 'device-info': {
      const [devices, signIns] = await Promise.all([m.devices.find({ subjectId }).lean(), m.signIns.find({ subjectId }).lean()]);
      return devices.length || signIns.length ? { devices, signIns } : null;
    }
    case 'activity-log': {
      const rows = await m.activity.find({ subjectId }).lean();
      return rows.length ? { activity: rows } : null;
    }
    case 'identity-verification': {
      const rows = phone ? await m.smsSink.find({ to: phone }, { text: 0 }).lean() : [];
      return rows.length ? { messages: rows } : null;
    }
    default: return null;
  }
}

