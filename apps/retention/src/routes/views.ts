import { LEGAL_BASES, type ErasureParticipant, type LegalBasis } from '@pipp/contracts';
import type { Static } from '@sinclair/typebox';
import type { ErasureRequestDoc, RetentionPolicyDoc, RetentionPolicyVersionDoc } from '../plugins/models.js';
import type { ErasureRequestView, PolicyVersionView, PolicyView } from './schemas.js';

const iso = (d: Date | string | undefined | null) => (d ? new Date(d).toISOString() : undefined);

/**
 * Why something is kept, as its subject is told: the legal basis in words, never a participant's own
 * text, which may name the hold's evidence (a police request number, a case) that only staff may see.
 */
const keptReasonForSubject = (basis: LegalBasis) =>
  `Kept because the law requires it (${LEGAL_BASES[basis].title}; PIPL ${LEGAL_BASES[basis].pipl}), isolated from any other processing until the date shown`;

/**
 * An erasure request as shown to its subject (`audience: 'subject'`: staff ids, failure reasons,
 * escalations and the evidence behind what is kept left out) or to staff. Ids, grounds and counts only.
 */
export function requestView(doc: ErasureRequestDoc, audience: 'subject' | 'staff', extra: { backupsIsolatedUntil?: Date | null } = {}, now = new Date()): Static<typeof ErasureRequestView> {
  const staff = audience === 'staff';
  const participants = (Object.entries(doc.participants ?? {}) as [ErasureParticipant, NonNullable<ErasureRequestDoc['participants'][ErasureParticipant]>][]).map(([participant, p]) => ({
    participant,
    state: p.state,
    attempt: p.attempt,
    requestedAt: iso(p.requestedAt)!,
    ...(p.repliedAt ? { repliedAt: iso(p.repliedAt)! } : {}),
    ...(p.counts ? { counts: p.counts } : {}),
    ...(p.kept?.length ? { kept: staff ? p.kept : p.kept.map((k) => ({ ...k, reason: keptReasonForSubject(k.legalBasis) })) } : {}),
    ...(p.pendingRecipients?.length ? { pendingRecipients: p.pendingRecipients.length } : {}),
    ...(p.nextRetryAt && p.state !== 'completed' ? { nextRetryAt: iso(p.nextRetryAt)! } : {}),
    ...(p.exhausted ? { exhausted: true } : {}),
    ...(staff && p.error ? { error: p.error } : {}),
  }));
  return {
    requestId: doc._id,
    kind: doc.kind,
    subjectId: doc.subjectId,
    scope: doc.scope,
    ground: doc.ground,
    origin: doc.origin,
    requestedBy: staff || doc.requestedBy.role === 'subject' ? doc.requestedBy : { role: doc.requestedBy.role },
    ...(staff && doc.reference ? { reference: doc.reference } : {}),
    status: doc.status,
    ...(doc.refusal ? { refusal: doc.refusal } : {}),
    createdAt: iso(doc.createdAt)!,
    updatedAt: iso(doc.updatedAt)!,
    deadline: iso(doc.deadline)!,
    overdue: doc.status === 'in-progress' && new Date(doc.deadline) < now,
    ...(doc.completedAt ? { completedAt: iso(doc.completedAt)! } : {}),
    progress: { completed: participants.filter((p) => p.state === 'completed').length, total: participants.length },
    participants,
    totals: doc.totals,
    legalHolds: doc.legalHolds.map((h) => ({ category: h.category, legalBasis: h.legalBasis, purgeAt: iso(h.purgeAt)! })),
    ...(staff ? { escalations: doc.escalations.map((e) => ({ level: e.level, at: iso(e.at)!, participants: e.participants })) } : {}),
    joined: doc.joins.length,
    ...(extra.backupsIsolatedUntil !== undefined ? { backupsIsolatedUntil: iso(extra.backupsIsolatedUntil) ?? null } : {}),
  };
}

export function policyView(doc: RetentionPolicyDoc): Static<typeof PolicyView> {
  return {
    policyId: doc._id, category: doc.category, ...(doc.service ? { service: doc.service } : {}), periodDays: doc.periodDays, startsFrom: doc.startsFrom,
    criterion: doc.criterion, ...(doc.lawCitation ? { lawCitation: doc.lawCitation } : {}), action: doc.action, keepOnErasure: doc.keepOnErasure ?? false,
    ...(doc.rationale ? { rationale: doc.rationale } : {}), version: doc.version, updatedAt: iso(doc.updatedAt)!, updatedBy: doc.updatedBy,
  };
}

export function policyVersionView(doc: RetentionPolicyVersionDoc): Static<typeof PolicyVersionView> {
  const p = doc.policy;
  return {
    policyId: doc.policyId, version: doc.version, change: doc.change, at: iso(doc.at)!, by: doc.by, ...(doc.note ? { note: doc.note } : {}),
    policy: p ? {
      category: p.category, ...(p.service ? { service: p.service } : {}), periodDays: p.periodDays, startsFrom: p.startsFrom, criterion: p.criterion,
      ...(p.lawCitation ? { lawCitation: p.lawCitation } : {}), action: p.action, keepOnErasure: p.keepOnErasure ?? false, ...(p.rationale ? { rationale: p.rationale } : {}),
    } : null,
  };
}
