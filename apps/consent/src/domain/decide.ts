import {
  LEGAL_BASES, isSensitive, type DataCategory, type Decision, type DecisionRequest, type LegalBasis,
} from '@pipp/contracts';
import { categoryTitles, type ProcessingFunction, type Purpose } from './catalogue.js';
import {
  GENERAL, applicableVersion, currentVersion, withTerms, type Acceptance, type DocumentView, type PolicyVersionView,
} from './policy.js';
import { scopeKey } from './scope.js';

/**
 * The decision rules (policy 1.1, 2.1.1, 2.1.2, 2.4.2(2), 2.4.2(4), 2.4.2(5), 3.1, 3.3, 3.4, 5.3, VI;
 * PIPL art. 13–17, 23, 25, 29, 39): "may service S process categories C of subject U for purpose P
 * (to recipient R / in country K / by public disclosure)?" Pure: everything it needs is in the context.
 * Every answer, allowed or not, names the clause that decides it.
 */

/** The current state of one consent key in the ledger (the latest record for it). */
export interface ConsentEntry {
  recordId: string;
  seq: number;
  state: 'granted' | 'withdrawn';
  /** ms since epoch */
  at: number;
  /** The categories the purpose covered when the consent was given (what the subject agreed to). */
  categories: DataCategory[];
  policyVersion: number | null;
}

/** What the decision needs to know about one data subject. */
export interface SubjectView {
  /** By scope key (see scopeKey). */
  consents: Map<string, ConsentEntry>;
  /** By policy document id. */
  acceptances: Map<string, Acceptance>;
}

export interface Shutdown {
  shutdownId: string;
  functionId: string;
  title: string;
  /** ms since epoch */
  effectiveAt: number;
}

export interface DecisionContext {
  purposes: Map<string, Purpose>;
  functions: Map<string, ProcessingFunction>;
  /** Active functions needing each purpose. */
  functionsByPurpose: Map<string, ProcessingFunction[]>;
  general: DocumentView | undefined;
  /** Service-specific policies by the service they apply to (1.1). */
  byService: Map<string, DocumentView[]>;
  /** Service-specific policies by the function they apply to (1.1). */
  byFunction: Map<string, DocumentView[]>;
  /** Functions shut down (2.4.2(5)), by function id. */
  shutdowns: Map<string, Shutdown>;
  /** ISO 3166-1 alpha-2 code of the home region (5.3), e.g. CN. */
  homeRegion: string;
  /** ms since epoch */
  now: number;
}

export interface DecisionOutcome {
  decision: Decision;
  /** Non-restricting policy versions this use implies acceptance of (continued use after notice, VI). */
  implied: { documentId: string; version: number }[];
}

/** Exceptions of 5.3 to storing PI in the home region, other than the subject's separate consent (5.3.2). */
const CROSS_BORDER_BASES: Partial<Record<LegalBasis, string>> = {
  'legal-obligation': '5.3.1',
  'other-law': '5.3.1',
  'contract-necessity': '5.3.3',
};

const iso = (ms: number) => new Date(ms).toISOString();

/** Decides one request. */
/**
 * The shutdowns in effect when every function serving `purposeId` for `categories` has stopped
 * operating (policy 2.4.2(5)), else null: nothing is collected for them any more. A function serves
 * them when it uses all of them (`match: 'all'`, one processing: a decision) or any (`'any'`, a grant
 * of several). Pure.
 */
export function allStopped(ctx: Pick<DecisionContext, 'functionsByPurpose' | 'shutdowns' | 'now'>, purposeId: string, categories: readonly string[], match: 'all' | 'any' = 'all'): Shutdown[] | null {
  const uses = (f: ProcessingFunction, c: string) => (f.categories as readonly string[]).includes(c);
  const serving = (ctx.functionsByPurpose.get(purposeId) ?? []).filter((f) => (match === 'all' ? categories.every((c) => uses(f, c)) : categories.some((c) => uses(f, c))));
  const stopped = serving.map((f) => ctx.shutdowns.get(f.id)).filter((s): s is Shutdown => s !== undefined && s.effectiveAt <= ctx.now);
  return serving.length && stopped.length === serving.length ? stopped : null;
}

export function decide(req: DecisionRequest, ctx: DecisionContext, subject: SubjectView | undefined): DecisionOutcome {
  const generalNow = ctx.general ? currentVersion(ctx.general, ctx.now) : undefined;
  const policyVersion = generalNow?.version;
  const out = (allowed: boolean, clause: string, reason: string, basis: Decision['basis'] = null, implied: DecisionOutcome['implied'] = []): DecisionOutcome => ({
    decision: { allowed, basis, clause, reason, ...(policyVersion === undefined ? {} : { policyVersion }) },
    implied,
  });
  const deny = (clause: string, reason: string) => out(false, clause, reason);

  const catalogued = ctx.purposes.get(req.purpose);
  if (!catalogued || catalogued.status !== 'active') {
    return deny('2.4.2(2)', `Purpose ${req.purpose} is not an active purpose of the catalogue: processing for a purpose the policy does not specify needs the subject's prior consent to a declared purpose`);
  }

  // Function shut down (2.4.2(5)), unknown, or not using this purpose and data (2.1, 2.4.2(2)).
  let fn: ProcessingFunction | undefined;
  if (req.functionId !== undefined) {
    const stopped = ctx.shutdowns.get(req.functionId);
    if (stopped && stopped.effectiveAt <= ctx.now) {
      return deny('2.4.2(5)', `The function ${req.functionId} (${stopped.title}) stopped operating on ${iso(stopped.effectiveAt)}: no personal information may be collected or processed for it`);
    }
    fn = ctx.functions.get(req.functionId);
    if (!fn || fn.status !== 'active') return deny('2.1', `Function ${req.functionId} is not an active function of the catalogue`);
    if (!fn.purposes.includes(catalogued.id)) {
      return deny('2.4.2(2)', `The ${fn.title} function does not serve purpose ${catalogued.id}: using its data for another purpose needs the subject's prior consent`);
    }
    const outside = req.categories.filter((c) => !fn!.categories.includes(c));
    if (outside.length) {
      return deny('2.4.2(2)', `The ${fn.title} function does not need ${outside.join(', ')}: collecting it for this function is not declared`);
    }
  } else {
    const stopped = allStopped(ctx, catalogued.id, req.categories);
    if (stopped) return deny('2.4.2(5)', `Every function serving purpose ${catalogued.id} for these categories stopped operating (${stopped.map((s) => s.functionId).join(', ')})`);
  }

  // Which documents apply: the general policy, then service-specific ones (1.1: the specific one wins).
  const docs: DocumentView[] = [];
  if (ctx.general) docs.push(ctx.general);
  docs.push(...(ctx.byService.get(req.service) ?? []));
  if (req.functionId !== undefined) docs.push(...(ctx.byFunction.get(req.functionId) ?? []));
  let purpose = catalogued;
  let termsFrom: PolicyVersionView | undefined;
  let awaiting: PolicyVersionView | undefined;
  for (const doc of docs) {
    const applied = applicableVersion(doc, catalogued.id, subject?.acceptances.get(doc.documentId), ctx.now);
    awaiting ??= applied.awaiting;
    if (doc.documentId !== GENERAL && applied.version) {
      const t = withTerms(purpose, applied.version.terms);
      if (t.changed) {
        purpose = t.purpose;
        termsFrom = applied.version;
      }
    }
  }
  const specific = termsFrom ? `the ${termsFrom.documentId} policy v${termsFrom.version}, which takes precedence for this service (1.1)` : '';

  // Purpose limitation (2.4.2(2)).
  const undeclared = req.categories.filter((c) => !purpose.categories.includes(c));
  if (undeclared.length) {
    return termsFrom
      ? deny('1.1', `Under ${specific}, purpose ${purpose.id} does not cover ${undeclared.join(', ')}`)
      : deny('2.4.2(2)', `Purpose ${purpose.id} does not cover ${undeclared.join(', ')}: using data collected for another purpose needs the subject's prior consent`);
  }

  // What the processing must name (3.1, 3.3, 5.3).
  if (purpose.requires === 'recipient' && req.recipientId === undefined) return deny('3.1', `Purpose ${purpose.id} provides data to a third party: name the recipient (recipientId)`);
  if (purpose.requires === 'disclosure' && req.disclosure !== true) return deny('3.3', `Purpose ${purpose.id} is public disclosure: set disclosure to true`);
  if (purpose.requires === 'country' && req.country === undefined) return deny('5.3', `Purpose ${purpose.id} stores or transfers data abroad: name the destination country`);
  const foreign = req.country !== undefined && req.country !== ctx.homeRegion;
  if (purpose.requires === 'country' && !foreign) {
    return deny('5.3', `${req.country} is the home region: storing data there is not a cross-border transfer; ask for the purpose of the processing itself`);
  }
  const external = req.recipientId !== undefined || req.disclosure === true;

  // A claimed legal basis (2.4.2(4), 3.4, 5.3.1, 5.3.3): admitted by the purpose, with its evidence.
  if (req.legalBasis) {
    const b = req.legalBasis.legalBasis;
    if (!purpose.legalBases.includes(b)) {
      const admitted = purpose.legalBases.join(', ');
      return termsFrom
        ? deny('1.1', `Under ${specific}, purpose ${purpose.id} does not admit the legal basis ${b} (it admits: ${admitted})`)
        : deny('2.4.2(4)', `Purpose ${purpose.id} does not admit the legal basis ${b}; it admits: ${admitted}`);
    }
    const sharingClause = LEGAL_BASES[b].sharingClause;
    if (external && sharingClause === null) {
      return deny('3.4', `The legal basis ${b} is not an exception to consent for sharing, transfer or public disclosure (3.4.1–3.4.7)`);
    }
    const crossBorder = CROSS_BORDER_BASES[b];
    if (foreign && !crossBorder) {
      return deny('5.3', `Storing or transferring data in ${req.country} needs the subject's separate consent (5.3.2), a legal provision (5.3.1) or a contract the subject is party to (5.3.3); ${b} is none of them`);
    }
    const clause = foreign ? crossBorder! : external ? sharingClause! : LEGAL_BASES[b].clause;
    return out(true, clause, `Allowed without consent on the legal basis ${b} (${LEGAL_BASES[b].title}), evidence ${req.legalBasis.evidenceRef}`,
      { kind: 'legal-basis', legalBasis: b, evidenceRef: req.legalBasis.evidenceRef });
  }

  // A standing basis declared by the purpose (e.g. security, 2.4.1(3)) covers internal processing.
  const standing = purpose.standingBasis;
  if (standing && purpose.legalBases.includes(standing.legalBasis) && !external && !foreign) {
    return out(true, LEGAL_BASES[standing.legalBasis].clause, `Allowed without consent on the legal basis ${standing.legalBasis} (${LEGAL_BASES[standing.legalBasis].title}) that purpose ${purpose.id} declares`,
      { kind: 'legal-basis', legalBasis: standing.legalBasis, evidenceRef: standing.evidenceRef });
  }

  // Consent (2.1.1, 2.1.2, 2.4.2(2), 3.1.2, 3.3.1, 5.3.2, PIPL art. 29).
  if (!purpose.legalBases.includes('consent')) {
    const admitted = purpose.legalBases.join(', ');
    return termsFrom
      ? deny('1.1', `Under ${specific}, purpose ${purpose.id} is not consent-based: claim one of its legal bases (${admitted}) with evidence`)
      : deny('2.4.2(4)', `Purpose ${purpose.id} is not consent-based: claim one of its legal bases (${admitted}) with evidence`);
  }
  if (awaiting) {
    return deny('VI', `Version ${awaiting.version} of the ${awaiting.documentId} policy restricts the subject's rights for purpose ${purpose.id} (${awaiting.summary}); processing under the new terms waits for the subject's express consent to it`);
  }

  const baseClause = purpose.policyClause === null ? '2.4.2(2)' : purpose.kind === 'basic' ? '2.1.1' : '2.1.2';
  const needs: { key: string; clause: string; what: string }[] = [];
  if (purpose.requires === null) needs.push({ key: scopeKey(purpose.id), clause: baseClause, what: `purpose "${purpose.title}"` });
  if (req.recipientId !== undefined) needs.push({ key: scopeKey(purpose.id, { recipientId: req.recipientId }), clause: '3.1.2', what: `sharing with recipient ${req.recipientId}` });
  if (req.disclosure === true) needs.push({ key: scopeKey(purpose.id, { disclosure: true }), clause: '3.3.1', what: 'public disclosure' });
  if (foreign) needs.push({ key: scopeKey(purpose.id, { country: req.country }), clause: '5.3.2', what: `storage or transfer in ${req.country}` });
  for (const c of req.categories) {
    if (isSensitive(c)) needs.push({ key: scopeKey(purpose.id, { category: c }), clause: 'PIPL art. 29', what: `the sensitive category ${c}` });
  }

  const entries: ConsentEntry[] = [];
  for (const need of needs) {
    const entry = subject?.consents.get(need.key);
    if (!entry || entry.state !== 'granted') {
      const history = entry ? `withdrawn on ${iso(entry.at)}` : 'never given';
      if (need.clause === baseClause) return deny(baseClause, refusal(purpose, fn, req.categories, history));
      return deny(need.clause, `Needs the subject's separate consent to ${need.what} for purpose ${purpose.id} (${history})`);
    }
    entries.push(entry);
  }
  // The consent covers the categories the subject agreed to when giving it (a narrower grant, or a
  // purpose that covers more since): anything else needs the subject's consent first (2.4.2(2)).
  const primary = entries[0];
  if (!primary) return deny(baseClause, `Nothing the subject could consent to covers this processing under purpose ${purpose.id}`);
  const uncovered = req.categories.filter((c) => !primary.categories.includes(c));
  if (uncovered.length) {
    return deny(needs[0]!.clause === baseClause ? '2.4.2(2)' : needs[0]!.clause, `The consent to ${needs[0]!.what} given on ${iso(primary.at)} covers ${primary.categories.join(', ') || 'no category'}, not ${uncovered.join(', ')}: ask the subject first`);
  }

  const clause = req.recipientId !== undefined ? '3.1.2' : req.disclosure === true ? '3.3.1' : foreign ? '5.3.2' : baseClause;
  return out(true, clause, `Allowed with the subject's consent (${needs.map((n) => n.what).join('; ')})${termsFrom ? ` under ${specific}` : ''}`,
    { kind: 'consent', consentRecordId: entries[Math.max(0, needs.findIndex((n) => n.clause === clause))]!.recordId },
    impliedAcceptances(docs, subject, ctx.now));
}

/** Why a basic or additional function (or purpose) is unavailable, and what it needs (2.1.1, 2.1.2). */
function refusal(purpose: Purpose, fn: ProcessingFunction | undefined, categories: DataCategory[], history: string): string {
  const kind = purpose.kind === 'basic' ? 'basic' : 'additional';
  const what = fn ? `The ${fn.title} function` : `Purpose "${purpose.title}"`;
  const data = categoryTitles(fn ? fn.categories : categories);
  const why = fn ? fn.why : purpose.why;
  const effect = purpose.policyClause === null
    ? 'It is a purpose the policy did not specify, so it needs the subject\'s prior consent'
    : kind === 'basic'
      ? 'Without it only this function is unavailable; every other function keeps working'
      : 'It is optional: refusing it never affects the basic functions';
  return `${what} needs your ${data} because ${why}. Consent to "${purpose.title}" was ${history}. ${effect}.`;
}

/** Non-restricting versions whose notice period ended that this known subject has not accepted yet (VI). */
function impliedAcceptances(docs: DocumentView[], subject: SubjectView | undefined, now: number): DecisionOutcome['implied'] {
  if (!subject) return [];
  const implied: DecisionOutcome['implied'] = [];
  for (const doc of docs) {
    const v = currentVersion(doc, now);
    if (!v || v.restrictsRights || now < v.noticeEndsAt) continue;
    if ((subject.acceptances.get(doc.documentId)?.any ?? 0) < v.version) implied.push({ documentId: doc.documentId, version: v.version });
  }
  return implied;
}
