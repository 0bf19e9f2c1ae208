import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { upsertRaced } from '@pipp/service-kit';
import {
  DEFAULT_POLICIES, parsePolicyId, policyId, policyProblems, sweepRules, type RetentionPolicyData,
} from '../domain/policies.js';
import { RetentionErrors } from '../errors.js';
import type { Actor, RetentionPolicyDoc, RetentionPolicyVersionDoc } from './models.js';

const SYSTEM: Actor = { role: 'service', actorId: 'retention' };

declare module 'fastify' {
  interface FastifyInstance {
    /** Retention policies per data category and per service (see PolicyService). */
    policies: PolicyService;
  }
}

/** The stored fields of a policy, without bookkeeping. */
function dataOf(doc: RetentionPolicyDoc | RetentionPolicyData): RetentionPolicyData {
  return {
    category: doc.category, ...(doc.service ? { service: doc.service } : {}), periodDays: doc.periodDays, startsFrom: doc.startsFrom,
    criterion: doc.criterion, ...(doc.lawCitation ? { lawCitation: doc.lawCitation } : {}), action: doc.action,
    keepOnErasure: doc.keepOnErasure ?? false, ...(doc.rationale ? { rationale: doc.rationale } : {}),
  };
}

/**
 * Retention policies (policy 5.1, 5.2) as data the DPO edits: one general policy per data category
 * (seeded at first start from DEFAULT_POLICIES) and optional per-service overrides. Every change is
 * versioned (the previous versions stay readable) and audited; edits are conditional on the version
 * the editor read.
 */
export class PolicyService {
  private cache: { at: number; list: RetentionPolicyDoc[] } | undefined;

  constructor(private readonly app: FastifyInstance) {}

  /**
   * The policies as of at most `maxAgeMs` ago (hot paths: every erasure request reads them). A change
   * made here clears the cache at once; a change by another instance shows within `maxAgeMs`.
   */
  async current(maxAgeMs = 1000): Promise<RetentionPolicyDoc[]> {
    if (this.cache && Date.now() - this.cache.at < maxAgeMs) return this.cache.list;
    const list = await this.list();
    this.cache = { at: Date.now(), list };
    return list;
  }

  /**
   * Announces the periods in force (`privacy.retention.periods-changed`, policy 5.1, 5.2): at start and
   * after every change, so that what shows a retention date follows the DPO's policy at once, not at
   * the next sweep.
   */
  async announce(now = new Date()): Promise<void> {
    const rules = await this.rules();
    // Two instances starting together upsert the same document (FerretDB reports the loser as E11000).
    await upsertRaced(() => this.app.outbox.update(this.app.store.announcements, { _id: 'periods' }, { $set: { at: now } }, [
      this.app.outbox.entry('privacy.retention.periods-changed', { key: 'periods', payload: { asOf: now.toISOString(), rules } }),
    ], { upsert: true }));
  }

  /** Seeds the general policy of each category that has none yet (version 1). */
  async seed(now = new Date()): Promise<number> {
    let created = 0;
    for (const p of DEFAULT_POLICIES) {
      const id = policyId(p);
      // Two instances starting together race here; FerretDB reports the loser of an upsert as a duplicate.
      const r = await this.app.store.policies.updateOne({ _id: id }, { $setOnInsert: { ...p, version: 1, updatedAt: now, updatedBy: SYSTEM } }, { upsert: true })
        .catch((err: { code?: number }) => { if (err.code === 11000) return { upsertedCount: 0 }; throw err; });
      if (r.upsertedCount) {
        created += 1;
        await this.app.store.policyVersions.updateOne({ _id: `${id}#1` }, { $setOnInsert: { policyId: id, version: 1, change: 'created', policy: p, at: now, by: SYSTEM, note: 'seeded default' } }, { upsert: true });
      }
    }
    return created;
  }

  async list(): Promise<RetentionPolicyDoc[]> {
    return this.app.store.policies.find({}).sort({ _id: 1 }).lean();
  }

  /** @throws PIPP_RETENTION_POLICY_NOT_FOUND (404). */
  async get(id: string): Promise<RetentionPolicyDoc> {
    const doc = await this.app.store.policies.findById(id).lean();
    if (!doc) throw RetentionErrors.policyNotFound(`No retention policy ${id}`);
    return doc;
  }

  async versions(id: string): Promise<RetentionPolicyVersionDoc[]> {
    const list = await this.app.store.policyVersions.find({ policyId: id }).sort({ version: -1 }).limit(200).lean();
    if (!list.length) throw RetentionErrors.policyNotFound(`No retention policy ${id}`);
    return list;
  }

  /**
   * Creates or replaces a policy (policy 5.2). `expectedVersion` is the version the editor read
   * (0 to create a service override).
   * @throws PIPP_RETENTION_POLICY_NOT_FOUND (404) for an id naming no category,
   *   PIPP_RETENTION_POLICY_INVALID (400, clause 5.2) for a policy breaking the 5.2 rules,
   *   PIPP_RETENTION_POLICY_VERSION_CONFLICT (409) when it changed meanwhile.
   */
  async put(id: string, input: Omit<RetentionPolicyData, 'category' | 'service'>, expectedVersion: number, by: Actor, note?: string, now = new Date()): Promise<RetentionPolicyDoc> {
    const parsed = parsePolicyId(id);
    if (!parsed) throw RetentionErrors.policyNotFound(`${id} names no data category (use <category> or <category>@<service>)`);
    const data = dataOf({ ...input, ...parsed });
    const problems = policyProblems(data);
    if (problems.length) throw RetentionErrors.policyInvalid(problems.map((p) => `${p.path} ${p.message}`).join('; '), { clause: '5.2', details: problems });
    const version = expectedVersion + 1;
    const unset: Record<string, 1> = {};
    for (const k of ['lawCitation', 'rationale', 'service'] as const) if (data[k] === undefined) unset[k] = 1;
    const update = { $set: { ...data, version, updatedAt: now, updatedBy: by }, ...(Object.keys(unset).length ? { $unset: unset } : {}) };
    let written: RetentionPolicyDoc | null;
    if (expectedVersion === 0) {
      try {
        await this.app.store.policies.create({ _id: id, ...data, version, updatedAt: now, updatedBy: by });
        written = await this.app.store.policies.findById(id).lean();
      } catch (err) {
        if ((err as { code?: number }).code !== 11000) throw err;
        written = null;
      }
    } else {
      written = await this.app.store.policies.findOneAndUpdate({ _id: id, version: expectedVersion }, update, { new: true }).lean();
    }
    if (!written) {
      const current = await this.app.store.policies.findById(id).lean();
      if (!current && expectedVersion !== 0) throw RetentionErrors.policyNotFound(`No retention policy ${id}; create it with expectedVersion 0`);
      throw RetentionErrors.policyVersionConflict(`The policy is at version ${current?.version ?? 0}, not ${expectedVersion}; reload it and apply your change again`);
    }
    this.cache = undefined;
    await this.announce(now);
    await this.app.store.policyVersions.create({ _id: `${id}#${version}`, policyId: id, version, change: expectedVersion === 0 ? 'created' : 'updated', policy: data, at: now, by, ...(note ? { note } : {}) });
    await this.app.audit({ actor: by, action: 'retention-policy.put', target: { type: 'retention-policy', id }, clause: '5.2', details: { version, periodDays: data.periodDays, criterion: data.criterion, action: data.action } });
    return written;
  }

  /**
   * Deletes a service override (the general policy then applies there again). General policies can
   * only be edited: every category keeps one.
   * @throws PIPP_RETENTION_POLICY_REQUIRED (409), PIPP_RETENTION_POLICY_NOT_FOUND (404), PIPP_RETENTION_POLICY_VERSION_CONFLICT (409).
   */
  async remove(id: string, expectedVersion: number, by: Actor, now = new Date()): Promise<void> {
    const parsed = parsePolicyId(id);
    if (parsed && !parsed.service) throw RetentionErrors.policyRequired(`${id} is the general policy of its category; edit it instead`, { clause: '5.1' });
    const current = await this.app.store.policies.findById(id).lean();
    if (!current) throw RetentionErrors.policyNotFound(`No retention policy ${id}`);
    const r = await this.app.store.policies.deleteOne({ _id: id, version: expectedVersion });
    if (!r.deletedCount) throw RetentionErrors.policyVersionConflict(`The policy is at version ${current.version}, not ${expectedVersion}`);
    this.cache = undefined;
    await this.announce(now);
    await this.app.store.policyVersions.create({ _id: `${id}#${expectedVersion + 1}`, policyId: id, version: expectedVersion + 1, change: 'deleted', policy: null, at: now, by });
    await this.app.audit({ actor: by, action: 'retention-policy.delete', target: { type: 'retention-policy', id }, clause: '5.2' });
  }

  /** The rules of an expiry sweep (contracts RetentionRule), from the current policies. */
  async rules() {
    return sweepRules((await this.list()).map(dataOf));
  }
}

export const policiesPlugin = fp(async function policies(app: FastifyInstance) {
  const service = new PolicyService(app);
  app.decorate('policies', service);
  app.addHook('onReady', async () => {
    const created = await service.seed();
    if (created) app.log.info({ created }, 'default retention policies seeded');
    await service.announce();
  });
}, { name: 'retention-policies', dependencies: ['retention-models', 'retention-audit'] });
