import type { DataCategory, LegalBasis } from '@pipp/contracts';
import type { Purpose } from './catalogue.js';

/**
 * Policy documents and versions (policy preamble, 1.1, VI). The general policy is document `general`;
 * a service-specific policy (1.1) applies to one service or one function and may carry machine-readable
 * terms per purpose (data categories, admitted legal bases) that take precedence over the general
 * catalogue for that service or function ("the specific privacy policy will apply", 1.1).
 */

export const GENERAL = 'general';

/** Per-purpose terms of a service-specific policy version; each replaces the catalogue's value. */
export interface PurposeTerms {
  categories?: DataCategory[] | undefined;
  legalBases?: LegalBasis[] | undefined;
}
export interface PolicyTerms {
  purposes: Record<string, PurposeTerms>;
}

/** What a document applies to: the whole platform (general), or one service or one function (1.1). */
export type AppliesTo = { general: true } | { service: string } | { functionId: string };

export interface PolicyVersionView {
  documentId: string;
  version: number;
  appliesTo: AppliesTo;
  restrictsRights: boolean;
  /** Purposes a rights-restricting version touches (VI). */
  affectedPurposes: string[];
  summary: string;
  changes: string[];
  terms: PolicyTerms | null;
  /** ms since epoch */
  effectiveAt: number;
  /** ms since epoch; continued use after this counts as acceptance of a non-restricting version (VI). */
  noticeEndsAt: number;
}

export interface DocumentView {
  documentId: string;
  appliesTo: AppliesTo;
  /** Ascending by version. */
  versions: PolicyVersionView[];
}

/** The subject's acceptances of one document: the highest version accepted expressly, and at all. */
export interface Acceptance {
  express: number;
  any: number;
}

/** The label used in events and messages: `general`, a service name, or a function id. */
export function appliesToLabel(a: AppliesTo): string {
  if ('general' in a) return GENERAL;
  return 'service' in a ? a.service : a.functionId;
}

/** The version in force at `now` (the highest whose effectiveAt has come), or undefined. */
export function currentVersion(doc: DocumentView, now: number): PolicyVersionView | undefined {
  let found: PolicyVersionView | undefined;
  for (const v of doc.versions) if (v.effectiveAt <= now) found = v;
  return found;
}

/** True when a rights-restricting version touches this purpose (VI). */
export function restricts(v: PolicyVersionView, purpose: string): boolean {
  return v.restrictsRights && (v.affectedPurposes.length === 0 || v.affectedPurposes.includes(purpose));
}

/**
 * The version whose terms apply to this subject for this purpose (VI): the version in force, unless a
 * rights-restricting version touching the purpose is in force that the subject has not accepted
 * expressly; then the last version in force before the first such one (undefined if there is none),
 * and the unaccepted version is returned as `awaiting`. Versions not yet in force are skipped, not
 * an end: publication keeps effective times in version order, but a restriction in force must deny
 * even behind an earlier version still to come.
 */
export function applicableVersion(doc: DocumentView, purpose: string, acceptance: Acceptance | undefined, now: number): {
  version: PolicyVersionView | undefined;
  awaiting: PolicyVersionView | undefined;
} {
  let version: PolicyVersionView | undefined;
  for (const v of doc.versions) {
    if (v.effectiveAt > now) continue;
    if (restricts(v, purpose) && v.version > (acceptance?.express ?? 0)) return { version, awaiting: v };
    version = v;
  }
  return { version, awaiting: undefined };
}

/** The purpose as a service-specific version's terms redefine it (1.1), and whether they changed it. */
export function withTerms(purpose: Purpose, terms: PolicyTerms | null | undefined): { purpose: Purpose; changed: boolean } {
  const t = terms?.purposes[purpose.id];
  if (!t || (!t.categories && !t.legalBases)) return { purpose, changed: false };
  return {
    purpose: { ...purpose, categories: t.categories ?? purpose.categories, legalBases: t.legalBases ?? purpose.legalBases },
    changed: true,
  };
}

/**
 * How new terms restrict the subject's rights compared with the previous ones (VI): a purpose that may
 * process more data categories, or that admits a legal basis it did not (processing without consent).
 * `previous` is the previous version's terms, or null for a document's first version (compared with
 * the catalogue). Returns one reason per restriction, and the purposes they touch.
 */
export function rightsRestrictions(previous: PolicyTerms | null, next: PolicyTerms | null, catalogue: Map<string, Purpose>): {
  reasons: string[];
  purposes: string[];
} {
  const reasons: string[] = [];
  const purposes = new Set<string>();
  for (const [id, t] of Object.entries(next?.purposes ?? {})) {
    const base = catalogue.get(id);
    const before = previous?.purposes[id];
    const oldCategories = before?.categories ?? base?.categories ?? [];
    const oldBases = before?.legalBases ?? base?.legalBases ?? [];
    const moreCategories = (t.categories ?? oldCategories).filter((c) => !oldCategories.includes(c));
    const moreBases = (t.legalBases ?? oldBases).filter((b) => b !== 'consent' && !oldBases.includes(b));
    if (moreCategories.length) {
      reasons.push(`purpose ${id} would process more data categories: ${moreCategories.join(', ')}`);
      purposes.add(id);
    }
    if (moreBases.length) {
      reasons.push(`purpose ${id} would admit processing without consent on: ${moreBases.join(', ')}`);
      purposes.add(id);
    }
  }
  return { reasons, purposes: [...purposes] };
}
