import { randomUUID } from 'node:crypto';
import { SEED_CATALOGUE, catalogueProblems, type Catalogue, type ProcessingFunction, type Purpose } from '../domain/catalogue.js';
import { ConsentErrors } from '../errors.js';
import { markChanged, type Actor, type ConsentModels, type FunctionDoc, type PurposeDoc } from './models.js';
import type { Projection } from '../domain/projection.js';
import { upsertRaced } from '@pipp/service-kit';

const PURPOSE_FIELDS = ['id', 'title', 'description', 'kind', 'policyClause', 'categories', 'legalBases', 'standingBasis', 'requires', 'grantedAtRegistration', 'why', 'status'] as const;
const FUNCTION_FIELDS = ['id', 'title', 'kind', 'purposes', 'categories', 'why', 'status'] as const;

function pick<T extends object>(doc: T, fields: readonly string[]) {
  return Object.fromEntries(fields.map((f) => [f, (doc as Record<string, unknown>)[f] ?? null])) as never;
}
export const toPurpose = (d: PurposeDoc): Purpose => pick(d, PURPOSE_FIELDS);
export const toFunction = (d: FunctionDoc): ProcessingFunction => pick(d, FUNCTION_FIELDS);

/**
 * The catalogue of purposes and functions (policy 2.1, 2.4.1, 2.4.2(2)) as data the DPO edits: seeded at
 * first start, every edit checked against the catalogue's invariants, numbered (`revision`, optimistic
 * concurrency with `expectedRevision`) and kept in an audit trail of before/after (catalogue_changes).
 */
export class CatalogueStore {
  private purposeRevs = new Map<string, number>();
  private functionRevs = new Map<string, number>();

  constructor(private readonly models: ConsentModels, private readonly projection: Projection) {}

  /** Inserts the seed items that do not exist yet (idempotent, safe to race with other instances). */
  async seed(): Promise<void> {
    const now = new Date();
    const by: Actor = { role: 'system' };
    let inserted = 0;
    for (const p of SEED_CATALOGUE.purposes) {
      const r = await upsertRaced(() => this.models.purposes.updateOne({ _id: p.id }, { $setOnInsert: { ...p, _id: p.id, revision: 1, updatedAt: now, updatedBy: by } }, { upsert: true }));
      inserted += r.upsertedCount;
    }
    for (const f of SEED_CATALOGUE.functions) {
      const r = await upsertRaced(() => this.models.functions.updateOne({ _id: f.id }, { $setOnInsert: { ...f, _id: f.id, revision: 1, updatedAt: now, updatedBy: by } }, { upsert: true }));
      inserted += r.upsertedCount;
    }
    if (inserted) await markChanged(this.models, 'catalogue');
  }

  /** Loads the catalogue into the projection. */
  async load(): Promise<void> {
    const [purposes, functions] = await Promise.all([
      this.models.purposes.find({}).lean<PurposeDoc[]>(),
      this.models.functions.find({}).lean<FunctionDoc[]>(),
    ]);
    this.purposeRevs = new Map(purposes.map((p) => [p._id, p.revision]));
    this.functionRevs = new Map(functions.map((f) => [f._id, f.revision]));
    this.projection.setCatalogue(purposes.map(toPurpose), functions.map(toFunction));
  }

  revisionOf(kind: 'purpose' | 'function', id: string): number | undefined {
    return (kind === 'purpose' ? this.purposeRevs : this.functionRevs).get(id);
  }

  /**
   * Creates or replaces a purpose.
   * @throws PIPP_CATALOGUE_CONFLICT (409, with the clause) when the catalogue would break an invariant;
   *         PIPP_STALE_REVISION (409) when `expectedRevision` is not the current revision.
   */
  async putPurpose(purpose: Purpose, actor: Actor, expectedRevision?: number): Promise<{ revision: number; created: boolean }> {
    const catalogue: Catalogue = {
      purposes: [...[...this.projection.purposes.values()].filter((p) => p.id !== purpose.id), purpose],
      functions: [...this.projection.functions.values()],
    };
    this.check(catalogue);
    return this.write('purpose', purpose.id, purpose, actor, expectedRevision);
  }

  /** Creates or replaces a function (same checks and errors as putPurpose). */
  async putFunction(fn: ProcessingFunction, actor: Actor, expectedRevision?: number): Promise<{ revision: number; created: boolean }> {
    const catalogue: Catalogue = {
      purposes: [...this.projection.purposes.values()],
      functions: [...[...this.projection.functions.values()].filter((f) => f.id !== fn.id), fn],
    };
    this.check(catalogue);
    return this.write('function', fn.id, fn, actor, expectedRevision);
  }

  private check(catalogue: Catalogue) {
    const problems = catalogueProblems(catalogue);
    if (problems.length) {
      throw ConsentErrors.catalogueConflict(`The catalogue would break the policy: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`, {
        clause: problems[0]!.clause,
        details: problems.map((p) => ({ path: p.path, message: `${p.message} (policy ${p.clause})` })),
      });
    }
  }

  private async write(kind: 'purpose' | 'function', id: string, item: Purpose | ProcessingFunction, actor: Actor, expectedRevision?: number) {
    const model = (kind === 'purpose' ? this.models.purposes : this.models.functions) as unknown as ConsentModels['purposes'];
    const before = await model.findById(id).lean<PurposeDoc>();
    if (expectedRevision !== undefined && (before?.revision ?? 0) !== expectedRevision) {
      throw ConsentErrors.staleRevision(`The ${kind} ${id} is at revision ${before?.revision ?? 0}, not ${expectedRevision}; re-read it and retry`);
    }
    const now = new Date();
    const revision = (before?.revision ?? 0) + 1;
    const fields = { ...item, revision, updatedAt: now, updatedBy: actor };
    if (before) {
      const r = await model.updateOne({ _id: id, revision: before.revision }, { $set: fields });
      if (r.matchedCount === 0) throw ConsentErrors.staleRevision(`The ${kind} ${id} changed meanwhile; re-read it and retry`);
    } else {
      try {
        await model.create({ _id: id, ...fields });
      } catch (err) {
        if ((err as { code?: number }).code === 11000) throw ConsentErrors.staleRevision(`The ${kind} ${id} was created meanwhile; re-read it and retry`);
        throw err;
      }
    }
    const strip = (d: PurposeDoc | null) => (d ? (kind === 'purpose' ? toPurpose(d) : toFunction(d as unknown as FunctionDoc)) : null);
    await this.models.catalogueChanges.create({ _id: randomUUID(), at: now, actor, kind, itemId: id, revision, before: strip(before), after: item });
    await markChanged(this.models, 'catalogue');
    await this.load();
    return { revision, created: !before };
  }
}
