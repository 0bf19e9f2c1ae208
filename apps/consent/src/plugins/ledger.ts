import type { DataCategory } from '@pipp/contracts';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { randomUUID } from 'node:crypto';
import type { Config } from '../config.js';
import { Projection } from '../domain/projection.js';
import { buildReceipt, pseudonymFor, recordHash, sha256, type ConsentReceipt, type RecordContent } from '../domain/receipt.js';
import { canonicalScope, scopeKey, type ConsentScope } from '../domain/scope.js';
import { markChanged, type Actor, type ConsentChannel, type ConsentRecordDoc, type ConsentModels } from './models.js';
import { KeyedLock, upsertRaced, type Outbox } from '@pipp/service-kit';
import { ConsentErrors } from '../errors.js';

/** A record to append to a subject's ledger. */
export interface NewRecord {
  /** A deterministic id makes the append idempotent (a second append with it returns the first). */
  id?: string | undefined;
  kind: 'purpose' | 'policy';
  purpose?: string | undefined;
  scope?: ConsentScope | undefined;
  document?: { documentId: string; version: number } | undefined;
  state: 'granted' | 'withdrawn';
  consentType: 'express' | 'implied';
  channel: ConsentChannel;
  policyVersion: number | null;
  categories: string[];
  /** The text shown to the subject when asking (stored once by its SHA-256). */
  noticeText?: string | undefined;
  language?: string | undefined;
  actor: Actor;
  evidenceRef?: string | undefined;
  /** When the subject gave or withdrew it (default now). */
  at?: Date | undefined;
}

const MAX_ATTEMPTS = 25;

/**
 * The append-only consent ledger (policy 2.1.2, 2.4.2(2), VI; PIPL art. 14–16). Each append is one
 * document carrying its event in the same write (`privacy.consent.changed` or `privacy.policy.accepted`,
 * through the outbox), numbered per subject (a unique (subjectId, seq) index serialises concurrent
 * appends without transactions) and applied to this instance's projection before the call returns,
 * so a withdrawal counts here at once and everywhere else as soon as the event arrives. A subject's
 * appends run one at a time in this process (concurrent ones would only collide on the next seq), and
 * none is made once the subject's account erasure began (`markErased`).
 */
export class Ledger {
  private readonly seqHints = new Map<string, number>();
  private readonly appending = new KeyedLock();
  private readonly knownNotices = new Set<string>();
  private readonly impliedQueue: { subjectId: string; documentId: string; version: number }[] = [];
  private draining: Promise<void> | undefined;

  constructor(private readonly deps: {
    models: ConsentModels;
    outbox: Outbox;
    projection: Projection;
    config: Config;
    log: FastifyBaseLogger;
  }) {}

  /** Whether an account erasure of the subject began (their pseudonym is marked; policy 4.1, 4.2). */
  async isErased(subjectId: string): Promise<boolean> {
    return (await this.deps.models.erasedSubjects.exists({ _id: this.pseudonym(subjectId) })) !== null;
  }

  /**
   * Marks the subject erased (by pseudonym) and forgets them in this instance's projection, between
   * appends of theirs: an append that began before is then either found by the erasure's next look at
   * the ledger or, seeing the mark after its write, takes its record back (see append).
   */
  async markErased(subjectId: string, requestId: string): Promise<void> {
    await this.appending.run(subjectId, async () => {
      await upsertRaced(() => this.deps.models.erasedSubjects.updateOne({ _id: this.pseudonym(subjectId) }, { $setOnInsert: { requestId, at: new Date() } }, { upsert: true }));
      this.deps.projection.drop(subjectId);
    });
  }

  private pseudonym(subjectId: string): string {
    return pseudonymFor(subjectId, this.deps.config.CONSENT_PSEUDONYM_KEY);
  }

  /**
   * Appends one record; returns it and whether it is new (false: a record with the same id existed).
   * @throws PIPP_SUBJECT_ERASED (410) once the subject's account erasure began (a record written while
   * it began is deleted again); the database error when the write fails (nothing is recorded then).
   */
  async append(subjectId: string, rec: NewRecord): Promise<{ doc: ConsentRecordDoc; created: boolean }> {
    return this.appending.run(subjectId, () => this.appendNow(subjectId, rec));
  }

  private async appendNow(subjectId: string, rec: NewRecord): Promise<{ doc: ConsentRecordDoc; created: boolean }> {
    const { models, outbox, projection } = this.deps;
    if (await this.isErased(subjectId)) throw ConsentErrors.subjectErased();
    const noticeHash = rec.noticeText === undefined ? undefined : await this.storeNotice(rec.noticeText);
    const scope = canonicalScope(rec.scope);
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt += 1) {
      const seq = Math.max(projection.lastSeq(subjectId), this.seqHints.get(subjectId) ?? 0) + 1;
      const id = rec.id ?? `cr_${randomUUID()}`;
      const at = rec.at ?? new Date();
      const content: RecordContent = {
        id, seq, kind: rec.kind, purpose: rec.purpose, scope, document: rec.document, state: rec.state,
        consentType: rec.consentType, channel: rec.channel, policyVersion: rec.policyVersion, categories: rec.categories,
        noticeHash, language: rec.language, actor: rec.actor, evidenceRef: rec.evidenceRef, at,
      };
      const doc: ConsentRecordDoc = {
        _id: id, subjectId, seq, kind: rec.kind, purpose: rec.purpose, scope,
        scopeKey: rec.kind === 'purpose' && rec.purpose ? scopeKey(rec.purpose, scope) : undefined,
        document: rec.document, state: rec.state, consentType: rec.consentType, channel: rec.channel,
        policyVersion: rec.policyVersion, categories: rec.categories, noticeHash, language: rec.language,
        actor: rec.actor, evidenceRef: rec.evidenceRef, at, recordedAt: new Date(), hash: recordHash(content),
      };
      const event = rec.kind === 'purpose'
        ? outbox.entry('privacy.consent.changed', {
          subject: subjectId,
          payload: {
            subjectId, recordId: id, purpose: rec.purpose!, state: rec.state, at: at.toISOString(),
            ...(scope ? { scope } : {}), ...(rec.policyVersion ? { policyVersion: rec.policyVersion } : {}),
            // What a grant covers (absent: all the purpose's categories).
            ...(rec.state === 'granted' && rec.categories.length ? { categories: rec.categories as DataCategory[] } : {}),
          },
        })
        : outbox.entry('privacy.policy.accepted', {
          subject: subjectId,
          payload: {
            subjectId, recordId: id, documentId: rec.document!.documentId, version: rec.document!.version,
            express: rec.consentType === 'express', at: at.toISOString(),
          },
        });
      try {
        await outbox.insert(models.records, doc as never, [event]);
      } catch (err) {
        if ((err as { code?: number }).code !== 11000) throw err;
        if (rec.id) {
          const existing = await models.records.findById(rec.id).lean<ConsentRecordDoc>();
          if (existing) return { doc: existing, created: false };
        }
        // Another instance appended for this subject meanwhile: continue after its latest record.
        const latest = await models.records.find({ subjectId }).sort({ seq: -1 }).limit(1).lean<ConsentRecordDoc[]>();
        if (latest[0]) {
          projection.apply(latest[0]);
          this.seqHints.set(subjectId, latest[0].seq);
        }
        continue;
      }
      this.seqHints.delete(subjectId);
      if (await this.isErased(subjectId)) {
        // The erasure began during the write and may have looked at the ledger already: take it back.
        await models.records.deleteOne({ _id: id, subjectId });
        throw ConsentErrors.subjectErased();
      }
      projection.apply(doc);
      await this.countAppend();
      return { doc, created: true };
    }
    throw new Error(`could not append to the ledger of a subject after ${MAX_ATTEMPTS} attempts`);
  }

  /**
   * Marks that the ledger changed, after the record is stored (an instance that sees the new mark and
   * then reads the ledger finds the record): every instance reads recent records only when the mark
   * moved (statePlugin; `markChanged`). Best effort: the change is stored
   * and its event queued whatever happens here, and readers also look every 30 s.
   */
  private async countAppend(): Promise<void> {
    await markChanged(this.deps.models, 'ledger')
      .catch((err: unknown) => this.deps.log.warn({ err }, 'the ledger change mark could not be written; other instances see the change within 30 s'));
  }

  /**
   * Records, off the request path, that a subject's continued use after the notice period accepted a
   * non-restricting policy version (VI). The projection notes it at once, so it is recorded once.
   */
  recordImplied(subjectId: string, documentId: string, version: number): void {
    this.deps.projection.noteAcceptance(subjectId, documentId, version, false);
    this.impliedQueue.push({ subjectId, documentId, version });
    this.draining ??= this.drainImplied().finally(() => { this.draining = undefined; });
  }

  /** Waits for implied acceptances queued so far to be stored (tests, shutdown). */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private async drainImplied() {
    for (let next = this.impliedQueue.shift(); next; next = this.impliedQueue.shift()) {
      const { subjectId, documentId, version } = next;
      try {
        await this.append(subjectId, {
          id: `implied-${this.keyedId(`${subjectId}\u0000${documentId}\u0000${version}`)}`,
          kind: 'policy', document: { documentId, version }, state: 'granted', consentType: 'implied',
          channel: 'continued-use', policyVersion: documentId === 'general' ? version : null, categories: [],
          noticeText: `Continued use of the services after the notice period of version ${version} of the ${documentId} policy (policy VI)`,
          actor: { role: 'system' },
        });
      } catch (err) {
        if ((err as { code?: string }).code === ConsentErrors.subjectErased.code) continue; // erased meanwhile: nothing to record
        // Not lost for good: after a restart the projection no longer holds it, so the next use re-detects it.
        this.deps.log.warn({ err, documentId, version }, 'could not record an implied policy acceptance');
      }
    }
  }

  /**
   * A deterministic record id for an idempotent append, derived from the subject id with the pseudonym
   * key (HMAC), so the id itself never names the subject once the record is pseudonymized.
   */
  keyedId(material: string): string {
    return pseudonymFor(material, this.deps.config.CONSENT_PSEUDONYM_KEY).slice(3, 35);
  }

  /** Stores a notice text once, by its SHA-256; returns the hash. */
  async storeNotice(text: string): Promise<string> {
    const hash = sha256(text);
    if (!this.knownNotices.has(hash)) {
      await upsertRaced(() => this.deps.models.notices.updateOne({ _id: hash }, { $setOnInsert: { text, firstSeenAt: new Date() } }, { upsert: true }));
      this.knownNotices.add(hash);
    }
    return hash;
  }

  /** The consent receipt of a record (Kantara CR v1.1 / ISO/IEC TS 27560 fields). */
  receipt(doc: ConsentRecordDoc, subjectId = doc.subjectId): ConsentReceipt {
    const { config, projection } = this.deps;
    const general = doc.policyVersion ?? 1;
    return buildReceipt({ ...doc, id: doc._id }, {
      subjectId,
      purpose: doc.purpose ? projection.purposes.get(doc.purpose) : undefined,
      controller: { name: config.CONTROLLER_NAME, contact: config.CONTROLLER_CONTACT },
      jurisdiction: config.HOME_REGION,
      policyUrl: `${config.PUBLIC_BASE_URL}/v1/consent/public/policies/general/versions/${general}`,
      withdrawUrl: `${config.PUBLIC_BASE_URL}/v1/consent/subjects/${subjectId}/consents`,
    });
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    projection: Projection;
    ledger: Ledger;
  }
}

/** Decorates `app.projection` (the in-memory state decisions read) and `app.ledger` (appends). */
export const ledgerPlugin = fp(async function ledger(app: FastifyInstance, opts: { config: Config }) {
  const projection = new Projection(opts.config.HOME_REGION);
  app.decorate('projection', projection);
  const ledger = new Ledger({ models: app.models, outbox: app.outbox, projection, config: opts.config, log: app.log.child({ component: 'ledger' }) });
  app.decorate('ledger', ledger);
  app.addHook('onClose', async () => ledger.flush());
}, { name: 'consent-ledger', dependencies: ['consent-models'] });
