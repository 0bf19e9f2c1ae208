import type { Outbox } from '@pipp/service-kit';
import { readFile } from 'node:fs/promises';
import type { Config } from '../config.js';
import { PolicyParseError, parsePolicy } from '../domain/policy-parser.js';
import {
  GENERAL, appliesToLabel, rightsRestrictions, type AppliesTo, type PolicyTerms, type PolicyVersionView,
} from '../domain/policy.js';
import type { Projection } from '../domain/projection.js';
import { ConsentErrors } from '../errors.js';
import { markChanged, type Actor, type ConsentModels, type PolicyVersionDoc } from './models.js';

const DAY_MS = 24 * 3600 * 1000;

/** The general policy, version 1, shipped with the service and published at its first start. */
export const GENERAL_V1_FILE = new URL('../../policy/privacy-policy.txt', import.meta.url);

/** What the DPO publishes. */
export interface PublishInput {
  documentId: string;
  title: string;
  /** Required for the first version of a service-specific document; must not change afterwards. */
  appliesTo?: { service: string } | { functionId: string } | undefined;
  text: string;
  summary: string;
  /** The specific changes subjects are told about (VI); required from version 2 on. */
  changes: string[];
  restrictsRights: boolean;
  affectedPurposes?: string[] | undefined;
  terms?: PolicyTerms | null | undefined;
  /** Default: now. */
  effectiveAt?: Date | undefined;
  /** Default: POLICY_NOTICE_DAYS (0 for a document's first version). */
  noticeDays?: number | undefined;
}

export const toView = (d: PolicyVersionDoc): PolicyVersionView => ({
  documentId: d.documentId, version: d.version, appliesTo: d.appliesTo, restrictsRights: d.restrictsRights,
  affectedPurposes: d.affectedPurposes ?? [], summary: d.summary, changes: d.changes, terms: d.terms ?? null,
  effectiveAt: new Date(d.effectiveAt).getTime(), noticeEndsAt: new Date(d.noticeEndsAt).getTime(),
});

/**
 * Policy documents and their versions (policy preamble, 1.1, VI): each version is parsed into
 * addressable clauses, compared with the previous one for restrictions of the subject's rights, and
 * published with `privacy.policy.published` in the same write (outbox), so subjects are told of the
 * specific changes (the incident service notifies them).
 */
export class PolicyStore {
  constructor(private readonly deps: { models: ConsentModels; outbox: Outbox; projection: Projection; config: Config }) {}

  async load(): Promise<void> {
    const docs = await this.deps.models.policyVersions.find({}, { text: 0, clauses: 0 }).lean<PolicyVersionDoc[]>();
    this.deps.projection.setPolicies(docs.map(toView));
  }

  /** Publishes the general policy v1 from the shipped text, unless a version exists (idempotent). */
  async ensureGeneralV1(): Promise<void> {
    if (await this.deps.models.policyVersions.exists({ documentId: GENERAL })) return;
    const text = await readFile(GENERAL_V1_FILE, 'utf8');
    try {
      await this.publish({
        documentId: GENERAL, title: 'Personal information protection policy', text,
        summary: 'Initial version of the general privacy policy.', changes: [], restrictsRights: false,
      }, { role: 'system' });
    } catch (err) {
      // Another instance starting at the same moment published it first (whatever this attempt then
      // ran into: a stale revision, or a "version 2 without changes"): nothing left to do.
      if (await this.deps.models.policyVersions.exists({ documentId: GENERAL, version: 1 })) return;
      throw err;
    }
  }

  /**
   * Publishes the next version of a document.
   * @throws PIPP_POLICY_INVALID (422) for unparseable text, unknown purposes, a missing list of changes,
   *         an `appliesTo` that differs from the document's, a back-dated effective time, or one
   *         before the previous version's;
   *         PIPP_POLICY_CONFLICT (409, clause VI) when the terms restrict rights but the version is not
   *         flagged so; PIPP_STALE_REVISION (409) when another version was published meanwhile.
   */
  async publish(input: PublishInput, actor: Actor): Promise<PolicyVersionDoc> {
    const { models, outbox, projection, config } = this.deps;
    const previous = await models.policyVersions.find({ documentId: input.documentId }).sort({ version: -1 }).limit(1).lean<PolicyVersionDoc[]>();
    const prev = previous[0];
    const version = (prev?.version ?? 0) + 1;
    const invalid = (message: string, clause = 'VI') => ConsentErrors.invalidPolicy(message, { clause });

    let appliesTo: AppliesTo;
    if (input.documentId === GENERAL) {
      if (input.appliesTo) throw invalid('The general policy applies to every service; appliesTo is only for service-specific policies', '1.1');
      appliesTo = { general: true };
    } else if (prev) {
      if (input.appliesTo && appliesToLabel(input.appliesTo) !== appliesToLabel(prev.appliesTo)) {
        throw invalid(`The ${input.documentId} policy applies to ${appliesToLabel(prev.appliesTo)}; a new version cannot change that`, '1.1');
      }
      appliesTo = prev.appliesTo;
    } else {
      if (!input.appliesTo) throw invalid('A service-specific policy must say which service or function it applies to (appliesTo)', '1.1');
      appliesTo = input.appliesTo;
    }
    if (input.terms && input.documentId === GENERAL) throw invalid('Terms per purpose belong to service-specific policies; the general terms are the catalogue', '1.1');
    const unknown = [...Object.keys(input.terms?.purposes ?? {}), ...(input.affectedPurposes ?? [])].filter((p) => !projection.purposes.has(p));
    if (unknown.length) throw invalid(`Unknown purposes: ${[...new Set(unknown)].join(', ')}`);
    if (version > 1 && !input.changes.length) throw invalid('Say what changed: subjects are informed of the specific changes (changes)');

    let clauses;
    try {
      clauses = parsePolicy(input.text);
    } catch (err) {
      if (err instanceof PolicyParseError) throw invalid(`The text cannot be parsed into clauses: ${err.message}`, '1.1');
      throw err;
    }

    const restrictions = rightsRestrictions(prev?.terms ?? null, input.terms ?? null, projection.purposes);
    if (restrictions.reasons.length && !input.restrictsRights) {
      throw ConsentErrors.policyConflict(`This version restricts the subjects' rights (${restrictions.reasons.join('; ')}): publish it with restrictsRights so that processing under it waits for each subject's express consent`, {
        clause: 'VI', details: restrictions.reasons.map((r) => ({ path: '/body/terms', message: r })),
      });
    }
    const affectedPurposes = [...new Set([...(input.affectedPurposes ?? []), ...restrictions.purposes])];
    if (input.restrictsRights && !affectedPurposes.length) {
      throw invalid('Name the purposes whose processing the restriction touches (affectedPurposes): processing for them waits for express consent');
    }

    const now = Date.now();
    const effectiveAt = input.effectiveAt ?? new Date(now);
    if (effectiveAt.getTime() < now - 60_000) throw invalid('A version cannot take effect in the past');
    // Versions take effect in their order: "the version in force" is then always the latest one that has.
    if (prev && effectiveAt.getTime() < new Date(prev.effectiveAt).getTime()) {
      throw invalid(`Version ${version} cannot take effect before version ${prev.version} does (${new Date(prev.effectiveAt).toISOString()}): versions take effect in their order`);
    }
    const noticeDays = input.noticeDays ?? (version === 1 ? 0 : config.POLICY_NOTICE_DAYS);
    const noticeEndsAt = new Date(Math.max(effectiveAt.getTime(), now + noticeDays * DAY_MS));

    const doc: PolicyVersionDoc = {
      _id: `${input.documentId}@${version}`, documentId: input.documentId, version, title: input.title, appliesTo,
      text: input.text, clauses, summary: input.summary, changes: input.changes, restrictsRights: input.restrictsRights,
      affectedPurposes: input.restrictsRights ? affectedPurposes : [], terms: input.terms ?? null,
      effectiveAt, noticeEndsAt, publishedAt: new Date(now), publishedBy: actor,
    };
    const event = outbox.entry('privacy.policy.published', {
      payload: {
        documentId: doc.documentId, version, appliesTo: appliesToLabel(appliesTo), restrictsRights: doc.restrictsRights,
        summary: doc.summary, changes: doc.changes, effectiveAt: effectiveAt.toISOString(), noticeEndsAt: noticeEndsAt.toISOString(),
        ...(doc.affectedPurposes.length ? { affectedPurposes: doc.affectedPurposes } : {}),
      },
    });
    try {
      await outbox.insert(models.policyVersions, doc as never, [event]);
    } catch (err) {
      if ((err as { code?: number }).code === 11000) throw ConsentErrors.staleRevision(`Version ${version} of ${input.documentId} was published meanwhile; re-read and retry`);
      throw err;
    }
    await markChanged(models, 'policies');
    await this.load();
    return doc;
  }
}
