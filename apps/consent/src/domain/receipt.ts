import { createHash, createHmac } from 'node:crypto';
import { DATA_CATEGORIES, isSensitive, type DataCategory } from '@pipp/contracts';
import type { Purpose } from './catalogue.js';
import type { ConsentScope } from './scope.js';

/** JSON with object keys sorted at every level, so equal content always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * The pseudonym that replaces a subject id in consent proofs kept after erasure: HMAC-SHA256 keyed with
 * a secret held apart from the records, so the kept proof identifies nobody without that key (PIPL
 * art. 73(3) de-identification), yet the DPO can find it for a given subject id when the law asks.
 */
export function pseudonymFor(subjectId: string, key: string): string {
  return `ps_${createHmac('sha256', key).update(subjectId).digest('base64url').slice(0, 43)}`;
}

/** The content of a ledger record that its hash covers (everything except the subject id). */
export interface RecordContent {
  id: string;
  seq: number;
  kind: 'purpose' | 'policy';
  purpose?: string | undefined;
  scope?: ConsentScope | undefined;
  document?: { documentId: string; version: number } | undefined;
  state: 'granted' | 'withdrawn';
  consentType: 'express' | 'implied';
  channel: string;
  policyVersion: number | null;
  categories: string[];
  noticeHash?: string | undefined;
  language?: string | undefined;
  actor: { role: string; id?: string | undefined };
  evidenceRef?: string | undefined;
  at: Date;
}

/** SHA-256 of a record's content: quoted in its receipt, so a subject can show it was not altered. */
export function recordHash(content: RecordContent): string {
  return sha256(canonicalJson(content));
}

export interface ReceiptContext {
  subjectId: string;
  purpose?: Purpose | undefined;
  controller: { name: string; contact: string };
  jurisdiction: string;
  /** Absolute URL of the policy version in force when the record was made. */
  policyUrl: string;
  /** Where the subject withdraws (or changes) this consent. */
  withdrawUrl: string;
}

/**
 * A consent receipt for one ledger record, with the fields of the Kantara Consent Receipt v1.1 and the
 * event/notice/state elements of ISO/IEC TS 27560 (PIPL art. 14–17: the subject can show what they
 * agreed to, when, how, and under which policy).
 */
export function buildReceipt(record: RecordContent & { hash: string }, ctx: ReceiptContext) {
  const categories = record.categories as DataCategory[];
  const sensitive = categories.filter((c) => DATA_CATEGORIES[c] && isSensitive(c));
  if (record.scope?.category && !sensitive.includes(record.scope.category)) sensitive.push(record.scope.category);
  const purposeName = record.kind === 'policy'
    ? `Acceptance of the ${record.document?.documentId} policy, version ${record.document?.version}`
    : ctx.purpose?.title ?? record.purpose ?? '';
  const eventType = record.kind === 'policy' ? 'accepted' : record.state === 'granted' ? 'given' : 'withdrawn';
  return {
    version: 'KI-CR-v1.1.0',
    jurisdiction: ctx.jurisdiction,
    consentTimestamp: Math.floor(record.at.getTime() / 1000),
    collectionMethod: record.channel,
    consentReceiptID: record.id,
    language: record.language ?? 'en',
    piiPrincipalId: ctx.subjectId,
    piiControllers: [{ piiController: ctx.controller.name, onBehalf: false, contact: ctx.controller.contact }],
    policyUrl: ctx.policyUrl,
    services: [{
      service: record.kind === 'policy' ? 'policy' : record.purpose ?? '',
      purposes: [{
        purpose: purposeName,
        purposeCategory: [record.kind === 'policy' ? 'policy-acceptance' : ctx.purpose?.kind === 'basic' ? 'basic-function' : 'additional-function'],
        consentType: record.consentType === 'express' ? 'EXPLICIT' : 'IMPLICIT',
        piiCategory: categories.map((c) => DATA_CATEGORIES[c]?.title ?? c),
        primaryPurpose: ctx.purpose?.kind === 'basic',
        termination: `Withdraw at any time, as easily as it was given: ${ctx.withdrawUrl}`,
        thirdPartyDisclosure: record.scope?.recipientId !== undefined || record.scope?.disclosure === true,
        ...(record.scope?.recipientId !== undefined ? { thirdPartyName: record.scope.recipientId } : {}),
      }],
    }],
    sensitive: sensitive.length > 0,
    spiCat: sensitive.map((c) => DATA_CATEGORIES[c]?.title ?? c),
    // ISO/IEC TS 27560 elements
    event: { type: eventType, time: record.at.toISOString(), method: record.channel, actor: record.actor.role },
    state: record.state,
    scope: record.scope ?? {},
    ...(record.document ? { policy: record.document } : {}),
    policyVersion: record.policyVersion,
    ...(record.noticeHash ? { notice: { sha256: record.noticeHash, language: record.language ?? 'en' } } : {}),
    recordSeq: record.seq,
    recordHash: record.hash,
  };
}

export type ConsentReceipt = ReturnType<typeof buildReceipt>;
