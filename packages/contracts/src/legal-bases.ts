import { VisibleText } from './common.js';
import { Type, type Static } from '@sinclair/typebox';
import type { ClauseId } from './clauses.js';

/**
 * The legal bases for processing PI, one list for every service (DESIGN.md). `consent` is the
 * default; every other basis is an exception from policy 2.4.2(4) (processing) and, where it also
 * applies to sharing, transfer and public disclosure, from 3.4 (PIPL art. 13).
 */
export const LEGAL_BASES = {
  consent: { clause: '2.4.2(4)', sharingClause: '3.1.2', pipl: 'art. 13(1)', title: "The data subject's consent" },
  'legal-obligation': { clause: '2.4.2(4)i', sharingClause: '3.4.1', pipl: 'art. 13(3)', title: 'Performance of obligations stipulated by laws and regulations' },
  'national-security': { clause: '2.4.2(4)ii', sharingClause: '3.4.2', pipl: 'art. 13(7)', title: 'National security and national defence' },
  'public-interest': { clause: '2.4.2(4)iii', sharingClause: '3.4.3', pipl: 'art. 13(4)', title: 'Public safety, public health and major public interests' },
  'law-enforcement': { clause: '2.4.2(4)iv', sharingClause: '3.4.4', pipl: 'art. 13(7)', title: 'Judicial or administrative law enforcement' },
  'vital-interests': { clause: '2.4.2(4)v', sharingClause: '3.4.5', pipl: 'art. 13(4)', title: 'Vital interests when consent is difficult to obtain' },
  'self-disclosed': { clause: '2.4.2(4)vi', sharingClause: '3.4.6', pipl: 'art. 13(6)', title: 'Information the subject disclosed to the public' },
  'lawfully-public': { clause: '2.4.2(4)vii', sharingClause: '3.4.7', pipl: 'art. 13(6)', title: 'Information from lawfully public sources' },
  'contract-necessity': { clause: '2.4.2(4)viii', sharingClause: null, pipl: 'art. 13(2)', title: 'Necessary to conclude or perform an agreement with the subject' },
  'service-security': { clause: '2.4.2(4)ix', sharingClause: null, pipl: 'art. 13(7)', title: 'Safe and stable operation of the products and services' },
  'other-law': { clause: '2.4.2(4)x', sharingClause: null, pipl: 'art. 13(7)', title: 'Other circumstances stipulated by laws and regulations' },
} as const satisfies Record<string, { clause: ClauseId; sharingClause: ClauseId | null; pipl: string; title: string }>;

export type LegalBasis = keyof typeof LEGAL_BASES;
export const LEGAL_BASIS_IDS = Object.keys(LEGAL_BASES) as LegalBasis[];

/** TypeBox schema of a legal basis id. */
export const LegalBasisSchema = Type.Union(LEGAL_BASIS_IDS.map((b) => Type.Literal(b)), {
  description: 'A legal basis for processing (policy 2.4.2(4), 3.4; PIPL art. 13)',
});

/**
 * A processing basis as recorded with each processing that is not consent-based: the basis and a
 * reference to its evidence (a statute, a court order number, a contract id …). Consent-based
 * processing records the consent record id instead.
 */
export const BasisRecordSchema = Type.Union([
  Type.Object({ kind: Type.Literal('consent'), consentRecordId: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false }),
  Type.Object({
    kind: Type.Literal('legal-basis'),
    legalBasis: Type.Union(LEGAL_BASIS_IDS.filter((b) => b !== 'consent').map((b) => Type.Literal(b))),
    evidenceRef: VisibleText(512),
  }, { additionalProperties: false }),
]);
export type BasisRecord = Static<typeof BasisRecordSchema>;
