import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../config.js';
import type { LedgerFact } from '../domain/projection.js';
import { CatalogueStore } from './catalogue.js';
import type { RevisionDoc, ShutdownDoc } from './models.js';
import { PolicyStore } from './policies.js';

declare module 'fastify' {
  interface FastifyInstance {
    catalogue: CatalogueStore;
    policies: PolicyStore;
    /** Re-reads now what changed: catalogue, policies, shutdowns, and recent ledger records when the ledger's change mark moved. */
    refreshState(): Promise<void>;
    /** Resolves once the projection is built at start (event handlers wait for it). */
    stateReady: Promise<void>;
  }
}

const PROJECTED = { _id: 1, subjectId: 1, seq: 1, kind: 1, scopeKey: 1, document: 1, state: 1, consentType: 1, categories: 1, policyVersion: 1, at: 1, recordedAt: 1, pseudonymized: 1 };
/** Records re-read on each refresh: those stored within this window before the last one seen (clock skew, slow writes). */
const OVERLAP_MS = 5000;
/** The longest time between two reads of recent ledger records while the ledger's change mark stays put. */
const LEDGER_BACKSTOP_MS = 30_000;
/** Most ledger records read by one refresh. */
const RECENT_MAX = 10_000;

/**
 * Keeps the in-memory projection current (policy 2.1, 2.4.2, VI; the decision API answers from it):
 * at start it seeds the catalogue, publishes the general policy v1 if none exists, loads catalogue,
 * policies and shutdowns and rebuilds every subject's state from the ledger, before the service is
 * ready. Afterwards, besides the events that update it at once, it checks every PROJECTION_REFRESH_MS
 * the change counters and re-reads what changed: catalogue, policies, shutdowns, and the ledger
 * records stored recently when the ledger's change mark moved, so an instance that missed an event
 * (the broker down, say) still converges within about that interval.
 */
export const statePlugin = fp(async function state(app: FastifyInstance, opts: { config: Config }) {
  const { models, projection, outbox } = app;
  const catalogue = new CatalogueStore(models, projection);
  const policies = new PolicyStore({ models, outbox, projection, config: opts.config });
  app.decorate('catalogue', catalogue);
  app.decorate('policies', policies);

  const seen: Record<RevisionDoc['_id'], RevisionDoc['rev']> = { catalogue: -1, policies: -1, shutdowns: -1, ledger: -1 };
  let watermark = 0;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  let markReady!: () => void;
  app.decorate('stateReady', new Promise<void>((resolve) => { markReady = resolve; }));

  const loadShutdowns = async () => {
    const docs = await models.shutdowns.find({}).lean<ShutdownDoc[]>();
    projection.setShutdowns(docs.map((d) => ({ shutdownId: d._id, functionId: d.functionId, title: d.title, effectiveAt: new Date(d.effectiveAt).getTime() })));
  };

  let ledgerReadAt = 0;
  const refresh = async () => {
    const revisions = await models.revisions.find({}).lean<RevisionDoc[]>();
    let ledgerMark: RevisionDoc['rev'] | undefined;
    for (const r of revisions) {
      if (r.rev === seen[r._id]) continue;
      if (r._id === 'ledger') { ledgerMark = r.rev; continue; } // noted as seen once the records are read
      if (r._id === 'catalogue') await catalogue.load();
      else if (r._id === 'policies') await policies.load();
      else await loadShutdowns();
      seen[r._id] = r.rev;
    }
    // The ledger is read only when its change mark moved since the last complete read (or after
    // LEDGER_BACKSTOP_MS, in case an instance died between a record and its mark): on FerretDB the
    // read below scans the whole collection, and twice a second that would cost more than everything
    // else as it grows.
    if (ledgerMark === undefined && Date.now() - ledgerReadAt < LEDGER_BACKSTOP_MS) return;
    const readAt = Date.now();
    const since = new Date(watermark - OVERLAP_MS);
    const recent = await models.records.find({ recordedAt: { $gte: since } }, PROJECTED).sort({ recordedAt: 1 }).limit(RECENT_MAX).lean<LedgerFact[]>();
    for (const r of recent) {
      projection.apply(r);
      const t = new Date(r.recordedAt ?? r.at).getTime();
      if (t > watermark) watermark = t;
    }
    // A full page may have left records behind: read again at the next tick.
    if (recent.length < RECENT_MAX) {
      ledgerReadAt = readAt;
      if (ledgerMark !== undefined) seen.ledger = ledgerMark;
    }
  };
  app.decorate('refreshState', async () => {
    await running;
    await refresh();
  });

  app.addHook('onReady', async () => {
    await catalogue.seed();
    await catalogue.load();
    await policies.ensureGeneralV1();
    await policies.load();
    await loadShutdowns();
    watermark = Date.now();
    const cursor = models.records.find({ pseudonymized: { $exists: false } }, PROJECTED).lean<LedgerFact[]>().cursor({ batchSize: 2000 });
    for await (const r of cursor) projection.apply(r as LedgerFact);
    const revisions = await models.revisions.find({}).lean<RevisionDoc[]>();
    for (const r of revisions) seen[r._id] = r.rev;
    const tick = () => {
      if (stopped) return;
      running = refresh()
        .catch((err: Error) => app.log.warn({ err }, 'projection refresh failed; will retry'))
        .finally(() => { running = undefined; timer = setTimeout(tick, opts.config.PROJECTION_REFRESH_MS); timer.unref(); });
    };
    timer = setTimeout(tick, opts.config.PROJECTION_REFRESH_MS);
    timer.unref();
    markReady();
  });
  app.addHook('onClose', async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    await running;
  });
}, { name: 'consent-state', dependencies: ['consent-ledger'] });
