import type { EventEnvelope } from '@pipp/contracts';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import { GENERAL, currentVersion } from '../domain/policy.js';
import type { LedgerFact } from '../domain/projection.js';
import { erasureLookups, handleErasure, handleSweep } from './erasure.js';
import { markChanged } from '../plugins/models.js';
import { upsertRaced } from '@pipp/service-kit';

const PROJECTED = { _id: 1, subjectId: 1, seq: 1, kind: 1, scopeKey: 1, document: 1, state: 1, consentType: 1, categories: 1, policyVersion: 1, at: 1, recordedAt: 1, pseudonymized: 1 };

/** Subjects whose events the service's consumer handles at once (their erasures then share ledger reads). */
const KEY_CONCURRENCY = 16;

/**
 * Records what registration implies (policy preamble, 2.1.1): the acknowledgment of the policy version
 * shown to the registrant (an express acceptance), a grant of every basic purpose the policy says
 * must be authorised to use the basic functions, and an express grant of each additional purpose the
 * registrant granted by giving its optional information (`grantedPurposes`, 2.4.1(1)ii; unknown or
 * inactive purposes are skipped). Idempotent: the record ids derive from the subject. A registration
 * delivered again after the subject's account erasure began records nothing. The acknowledgment
 * counts up to the version in force at `registeredAt` (VI); with no policy in force nothing is recorded.
 */
export async function recordRegistration(app: FastifyInstance, event: EventEnvelope<'privacy.subject.registered'>): Promise<void> {
  await app.stateReady;
  if (await app.ledger.isErased(event.payload.subjectId)) return;
  const { subjectId, registeredAt, policyAcknowledged } = event.payload;
  const at = new Date(registeredAt);
  const general = app.projection.document(GENERAL);
  const generalInForce = (general && currentVersion(general, at.getTime())?.version) ?? null;
  // An acknowledgment counts for a version that exists and was in force at registration, no later
  // one: an event naming version 99 (forged, or from a broken producer) would otherwise stand as
  // express acceptance of every rights-restricting version up to 99 (VI). An unknown document counts
  // as the general policy in force.
  const doc = app.projection.document(policyAcknowledged.documentId);
  const docInForce = doc && currentVersion(doc, at.getTime())?.version;
  const { documentId, version } = docInForce
    ? { documentId: policyAcknowledged.documentId, version: Math.min(policyAcknowledged.version, docInForce) }
    : { documentId: GENERAL, version: generalInForce };
  if (version === null) {
    // No policy was in force then: nothing was acknowledged, so nothing is granted.
    app.log.warn({ documentId: policyAcknowledged.documentId, registeredAt }, 'registration acknowledges no policy in force; nothing recorded');
    return;
  }
  if (documentId !== policyAcknowledged.documentId || version !== policyAcknowledged.version) {
    app.log.warn({ claimed: policyAcknowledged, recorded: { documentId, version } }, 'registration acknowledged a policy version not in force at registration; recorded the one in force');
  }
  const generalVersion = documentId === GENERAL ? version : generalInForce;
  await app.ledger.append(subjectId, {
    id: `reg-${app.ledger.keyedId(`${subjectId}\u0000registration`)}-policy`, kind: 'policy', document: { documentId, version }, state: 'granted', consentType: 'express',
    channel: 'registration', policyVersion: generalVersion, categories: [], actor: { role: 'subject' }, at,
    noticeText: `Registration: read and acknowledged version ${version} of the ${documentId} policy (policy preamble).`,
  });
  const granted = new Set(event.payload.grantedPurposes ?? []);
  for (const purpose of app.projection.purposes.values()) {
    if (purpose.status !== 'active') continue;
    let noticeText: string;
    if (purpose.grantedAtRegistration) {
      noticeText = `Registration: by acknowledging version ${version} of the ${documentId} policy you authorise "${purpose.title}", which the basic functions need: ${purpose.why} (policy 2.1.1).`;
    } else if (granted.has(purpose.id) && purpose.kind === 'additional') {
      noticeText = `Registration: by giving optional information you authorise "${purpose.title}": ${purpose.why}. You can withdraw at any time, as easily as you agreed.`;
    } else continue;
    await app.ledger.append(subjectId, {
      id: `reg-${app.ledger.keyedId(`${subjectId}\u0000registration`)}-${purpose.id}`, kind: 'purpose', purpose: purpose.id, state: 'granted', consentType: 'express',
      channel: 'registration', policyVersion: generalVersion, categories: purpose.categories, actor: { role: 'subject' }, at, noticeText,
    });
  }
}

/**
 * The consent service's consumers:
 * - `consent-events` (one group for the service, deduplicated): registrations (policy acknowledgment),
 *   function shutdowns (2.4.2(5)), erasure requests (4.1, 4.2) and retention sweeps (5.1); 16 keys at
 *   once (a subject's events in order; sweeps one at a time), and the erasures in hand find their
 *   ledger records in one query;
 * - `projection` (broadcast: every instance): applies consent events to this instance's projection at
 *   once (a withdrawal made on another instance counts here within the event's latency), reloads
 *   published policies, notes shutdowns and forgets erased subjects.
 */
export function registerConsumers(app: FastifyInstance, config: Config): void {
  const lookups = erasureLookups(app);
  app.kafka.consume({
    name: 'consent-events',
    keyConcurrency: KEY_CONCURRENCY,
    // An erasure is answered from its own record per request id (a repeat gets the same reply).
    idempotent: ['privacy.erasure.requested'],
    handlers: {
      'privacy.subject.registered': async (event) => recordRegistration(app, event),
      'privacy.function.shutdown': async (event) => {
        const { shutdownId, functionId, title, effectiveAt } = event.payload;
        await upsertRaced(() => app.models.shutdowns.updateOne({ _id: shutdownId }, {
          $setOnInsert: { functionId, title, effectiveAt: new Date(effectiveAt), receivedAt: new Date() },
        }, { upsert: true }));
        await markChanged(app.models, 'shutdowns');
        app.projection.addShutdown({ shutdownId, functionId, title, effectiveAt: Date.parse(effectiveAt) });
      },
      'privacy.erasure.requested': async (event) => {
        await app.stateReady;
        await handleErasure(app, config, event, lookups);
      },
      'privacy.retention.sweep-requested': async (event) => {
        await app.stateReady;
        // One sweep at a time (sweeps have their own keys): two would anonymize and count the same records.
        await app.mongo.locks.run('consent/sweeps', () => handleSweep(app, event));
      },
    },
  });

  const applyRecord = async (recordId: string) => {
    const r = await app.models.records.findById(recordId, PROJECTED).lean<LedgerFact>();
    if (r) app.projection.apply(r);
  };
  app.kafka.consume({
    name: 'projection',
    broadcast: true,
    dedupe: false,
    fromBeginning: false,
    handlers: {
      'privacy.consent.changed': async (event) => applyRecord(event.payload.recordId),
      'privacy.policy.accepted': async (event) => applyRecord(event.payload.recordId),
      'privacy.policy.published': async () => app.policies.load(),
      'privacy.function.shutdown': async (event) => {
        const { shutdownId, functionId, title, effectiveAt } = event.payload;
        app.projection.addShutdown({ shutdownId, functionId, title, effectiveAt: Date.parse(effectiveAt) });
      },
      'privacy.erasure.requested': async (event) => {
        const { subjectId, scope, participants } = event.payload;
        if (participants && !participants.includes('consent')) return;
        if (scope.kind === 'account' || scope.categories.includes('consent-record')) app.projection.drop(subjectId);
      },
    },
  });
}
