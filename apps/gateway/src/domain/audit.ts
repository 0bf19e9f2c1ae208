import type { Role } from '@pipp/contracts';
import type { Actor } from './access.js';
import type { PathClass } from './paths.js';

/**
 * The audit trail (DESIGN.md security model; policy 5.4 "protect your information from unauthorized
 * access", 2.4.1(3) "recording, audit, analysis"; PIPL art. 51, 54): who reached whose PI, through
 * which route, for which stated purpose, with what outcome and when. Records hold ids only: the
 * actor's id and role, the data subject's id, the route template (never the raw path or query),
 * a purpose id and a legal-basis id; never a phone number, name, token, body or IP address.
 */
export interface AuditRecord {
  _id: string;
  /** When the request arrived. */
  at: Date;
  requestId: string;
  actor: { role: Role | 'anonymous'; sub?: string; sid?: string };
  /** The data subject whose PI was reached, when known. */
  subjectId?: string;
  service: string;
  method: string;
  /** Route template (`/v1/consent/subjects/{subjectId}/consents`), or the path with ids redacted. */
  route: string;
  pathClass: PathClass;
  /** Purpose id stated by the caller (X-PIPP-Purpose) or reported by the service. */
  purpose?: string;
  /** Legal basis id stated by the caller (X-PIPP-Legal-Basis), when not consent. */
  legalBasis?: string;
  outcome: AuditOutcome;
  status: number;
  /** Error code of a refusal or failure (PIPP_FORBIDDEN …). */
  code?: string;
  durationMs: number;
}

export const AUDIT_OUTCOMES = ['succeeded', 'unauthenticated', 'denied', 'rejected', 'failed'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/** Maps an HTTP status to the outcome recorded (401 unauthenticated, 403/410 denied, other 4xx rejected, 5xx failed). */
export function outcomeOf(status: number): AuditOutcome {
  if (status < 400) return 'succeeded';
  if (status === 401) return 'unauthenticated';
  if (status === 403 || status === 410) return 'denied';
  if (status < 500) return 'rejected';
  return 'failed';
}

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Does this request read or change someone's PI, so that it must leave an audit record? Every call
 * to a subject's data, a staff function or another authenticated route does (refusals included: an
 * attempt on another subject's data is what the DPO most needs to see); anonymous writes to public
 * routes do (registration, sign-in, codes); reads of public documents (policy, announcements, OpenAPI,
 * keys) and rate-limited requests (429, refused before anything ran) do not.
 */
export function mustAudit(cls: PathClass, method: string, status: number): boolean {
  if (status === 429) return false;
  if (cls === 'document') return false;
  if (cls === 'public') return !READ_METHODS.has(method);
  return true;
}

/** Purpose ids (contracts `PurposeId`) and opaque subject ids: the only free values an audit record takes. */
export const PURPOSE_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
export const SUBJECT_ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The data subject a request concerns, from the most to the least authoritative source: the path
 * (`subjects/:subjectId`), what the service reports (`x-pipp-audit-subject` response header, e.g. the
 * id of a subject who just registered), a top-level `subjectId` in a JSON body (decision requests),
 * and the actor itself when a data subject acts. Values that are not valid subject ids are ignored.
 */
export function subjectOf(input: {
  pathSubjectId?: string | undefined;
  reportedSubjectId?: string | undefined;
  body?: unknown;
  actor?: Actor | undefined;
}): string | undefined {
  const candidates = [
    input.pathSubjectId,
    input.reportedSubjectId,
    typeof input.body === 'object' && input.body !== null ? (input.body as { subjectId?: unknown }).subjectId : undefined,
    input.actor?.role === 'subject' ? input.actor.sub : undefined,
  ];
  for (const c of candidates) if (typeof c === 'string' && SUBJECT_ID.test(c)) return c;
  return undefined;
}

/**
 * The purpose recorded: what the caller stated (X-PIPP-Purpose), else what the service reported
 * (`x-pipp-audit-purpose`), else a top-level `purpose` of a JSON body (decision requests), else
 * `data-subject-request` when a subject acts on their own data (policy 4.1).
 */
export function purposeOf(input: {
  stated?: string | undefined;
  reported?: string | undefined;
  body?: unknown;
  actor?: Actor | undefined;
  subjectId?: string | undefined;
}): string | undefined {
  const bodyPurpose = typeof input.body === 'object' && input.body !== null ? (input.body as { purpose?: unknown }).purpose : undefined;
  for (const c of [input.stated, input.reported, bodyPurpose]) if (typeof c === 'string' && PURPOSE_ID.test(c)) return c;
  if (input.actor?.role === 'subject' && input.subjectId === input.actor.sub) return 'data-subject-request';
  return undefined;
}
