import type { DataCategory } from '@pipp/contracts';
import type { ProcessingFunction, Purpose } from './catalogue.js';
import type { ConsentEntry, DecisionContext, Shutdown, SubjectView } from './decide.js';
import { GENERAL, type Acceptance, type DocumentView, type PolicyVersionView } from './policy.js';

/** The fields of a ledger record the projection needs. */
export interface LedgerFact {
  _id: string;
  subjectId: string;
  seq: number;
  kind: 'purpose' | 'policy';
  scopeKey?: string | undefined;
  document?: { documentId: string; version: number } | undefined;
  state: 'granted' | 'withdrawn';
  consentType: 'express' | 'implied';
  categories: string[];
  policyVersion: number | null;
  at: Date;
  recordedAt?: Date | undefined;
  pseudonymized?: unknown;
}

/** How long records of an erased subject stored before the erasure are ignored if seen again (ms). */
const ERASED_GUARD_MS = 10 * 60_000;

interface SubjectState extends SubjectView {
  lastSeq: number;
}

/**
 * The in-memory projection the decision API answers from (policy 2.1, 2.4.2, VI): each subject's current
 * consent per key and policy acceptances, derived from the append-only ledger, plus the catalogue,
 * the policy documents and the function shutdowns. Applying a record is idempotent and order-free (the
 * record with the higher `seq` wins per key), so the rebuild at start, the local write, the event and
 * the periodic re-read can all apply the same record in any order.
 */
export class Projection {
  private readonly subjects = new Map<string, SubjectState>();
  /** Subjects erased here, with the time: records older than it are not applied again. */
  private readonly erasedAt = new Map<string, number>();
  private base: Omit<DecisionContext, 'now' | 'homeRegion'> = {
    purposes: new Map(), functions: new Map(), functionsByPurpose: new Map(),
    general: undefined, byService: new Map(), byFunction: new Map(), shutdowns: new Map(),
  };
  private docs = new Map<string, DocumentView>();

  constructor(private readonly homeRegion: string) {}

  /** Applies one ledger record (no effect if a newer record for its key is already known). */
  apply(r: LedgerFact): void {
    if (r.pseudonymized) return;
    const erased = this.erasedAt.get(r.subjectId);
    if (erased !== undefined && (r.recordedAt ?? r.at).getTime() <= erased) return;
    let s = this.subjects.get(r.subjectId);
    if (!s) {
      s = { consents: new Map(), acceptances: new Map(), lastSeq: 0 };
      this.subjects.set(r.subjectId, s);
    }
    if (r.seq > s.lastSeq) s.lastSeq = r.seq;
    if (r.kind === 'purpose' && r.scopeKey) {
      const known = s.consents.get(r.scopeKey);
      if (known && known.seq >= r.seq) return;
      const entry: ConsentEntry = {
        recordId: r._id, seq: r.seq, state: r.state, at: r.at.getTime(),
        categories: r.categories as DataCategory[], policyVersion: r.policyVersion,
      };
      s.consents.set(r.scopeKey, entry);
    } else if (r.kind === 'policy' && r.document && r.state === 'granted') {
      this.accept(s, r.document.documentId, r.document.version, r.consentType === 'express');
    }
  }

  /** Marks a policy version accepted for a subject (e.g. implied by continued use) before its record is stored. */
  noteAcceptance(subjectId: string, documentId: string, version: number, express: boolean): void {
    const s = this.subjects.get(subjectId);
    if (s) this.accept(s, documentId, version, express);
  }

  private accept(s: SubjectState, documentId: string, version: number, express: boolean) {
    const a: Acceptance = s.acceptances.get(documentId) ?? { express: 0, any: 0 };
    s.acceptances.set(documentId, { express: express ? Math.max(a.express, version) : a.express, any: Math.max(a.any, version) });
  }

  /** Forgets a subject (erasure): their records are pseudonymized and no longer count (4.1). */
  drop(subjectId: string, at = Date.now()): void {
    this.subjects.delete(subjectId);
    this.erasedAt.delete(subjectId); // re-inserted last: the map stays in time order
    this.erasedAt.set(subjectId, at);
    // The guard only has to outlive the re-read window of records stored before the erasure.
    for (const [id, t] of this.erasedAt) {
      if (t >= at - ERASED_GUARD_MS) break;
      this.erasedAt.delete(id);
    }
  }

  /** Removes one consent key of a subject (its history was purged by a retention sweep). */
  forget(subjectId: string, key: string): void {
    this.subjects.get(subjectId)?.consents.delete(key);
  }

  subject(subjectId: string): SubjectView | undefined {
    return this.subjects.get(subjectId);
  }

  /** The highest sequence number known for a subject's records (0 if none). */
  lastSeq(subjectId: string): number {
    return this.subjects.get(subjectId)?.lastSeq ?? 0;
  }

  /** Every subject with its consent map (for sweeps). */
  *entries(): IterableIterator<[string, SubjectView]> {
    yield* this.subjects.entries();
  }

  get subjectCount(): number {
    return this.subjects.size;
  }

  setCatalogue(purposes: Purpose[], functions: ProcessingFunction[]): void {
    const byPurpose = new Map<string, ProcessingFunction[]>();
    for (const f of functions) {
      if (f.status !== 'active') continue;
      for (const p of f.purposes) byPurpose.set(p, [...(byPurpose.get(p) ?? []), f]);
    }
    this.base = {
      ...this.base,
      purposes: new Map(purposes.map((p) => [p.id, p])),
      functions: new Map(functions.map((f) => [f.id, f])),
      functionsByPurpose: byPurpose,
    };
  }

  setPolicies(versions: PolicyVersionView[]): void {
    const docs = new Map<string, DocumentView>();
    for (const v of [...versions].sort((a, b) => a.version - b.version)) {
      const d = docs.get(v.documentId) ?? { documentId: v.documentId, appliesTo: v.appliesTo, versions: [] };
      d.versions.push(v);
      d.appliesTo = v.appliesTo;
      docs.set(v.documentId, d);
    }
    const byService = new Map<string, DocumentView[]>();
    const byFunction = new Map<string, DocumentView[]>();
    for (const d of docs.values()) {
      if ('service' in d.appliesTo) byService.set(d.appliesTo.service, [...(byService.get(d.appliesTo.service) ?? []), d]);
      if ('functionId' in d.appliesTo) byFunction.set(d.appliesTo.functionId, [...(byFunction.get(d.appliesTo.functionId) ?? []), d]);
    }
    this.docs = docs;
    this.base = { ...this.base, general: docs.get(GENERAL), byService, byFunction };
  }

  setShutdowns(shutdowns: Shutdown[]): void {
    this.base = { ...this.base, shutdowns: new Map(shutdowns.map((s) => [s.functionId, s])) };
  }

  addShutdown(s: Shutdown): void {
    const current = this.base.shutdowns.get(s.functionId);
    if (current && current.effectiveAt <= s.effectiveAt) return;
    this.base = { ...this.base, shutdowns: new Map([...this.base.shutdowns, [s.functionId, s]]) };
  }

  document(documentId: string): DocumentView | undefined {
    return this.docs.get(documentId);
  }

  get documents(): DocumentView[] {
    return [...this.docs.values()];
  }

  get purposes(): Map<string, Purpose> {
    return this.base.purposes;
  }

  get functions(): Map<string, ProcessingFunction> {
    return this.base.functions;
  }

  get shutdowns(): Map<string, Shutdown> {
    return this.base.shutdowns;
  }

  /**
   * The decision context at `now` (ms since epoch). One object, rebuilt only when the catalogue,
   * policies or shutdowns change (this is on every decision's path); decisions use it synchronously.
   */
  context(now: number): DecisionContext {
    if (this.ctx?.base !== this.base) this.ctx = { base: this.base, value: { ...this.base, homeRegion: this.homeRegion, now } };
    this.ctx.value.now = now;
    return this.ctx.value;
  }

  private ctx: { base: Projection['base']; value: DecisionContext } | undefined;
}
