import type { EventPayload } from '@pipp/contracts';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { storeIfNewer } from '@pipp/service-kit';
import type { Config } from '../config.js';

const DAY_MS = 86_400_000;

/** Categories identity dates by time (records of sign-ins and devices, activity logs). */
export type TimedCategory = 'activity-log' | 'device-info';

export interface RetentionPeriods {
  /** When a record of `category` dated `from` reaches the end of its retention period. */
  until(category: TimedCategory, from: Date): Date;
  /** True once a sweep of the retention service has set the category's period (its sweeps then erase or anonymize it). */
  governed(category: TimedCategory): boolean;
  /** Reads the stored periods again (another instance may have taken a sweep's; housekeeping calls it). */
  refresh(): Promise<void>;
  /** Takes the periods of a sweep's rules (called for every `privacy.retention.sweep-requested`). */
  apply(sweep: Pick<EventPayload<'privacy.retention.sweep-requested'>, 'sweepId' | 'asOf' | 'rules'>): Promise<void>;
}

declare module 'fastify' {
  interface FastifyInstance {
    retentionPeriods: RetentionPeriods;
  }
}

/**
 * The retention periods identity shows and applies to what it dates by time (policy 5.1, 5.2): the
 * retention service's, as its latest sweep or announcement (`privacy.retention.periods-changed`, at its
 * start and on every change) carried them (the DPO edits them there, versioned and audited), so a
 * period the DPO lengthened or shortened holds here too. Until one has brought a period,
 * ACTIVITY_RETENTION_DAYS and DEVICE_RETENTION_DAYS apply, and identity's housekeeping deletes by them;
 * once it has, the retention service's sweeps do (erasing or anonymizing as its policy says).
 */
export const retentionPeriodsPlugin = fp(async function retentionPeriods(app: FastifyInstance, opts: { config: Config }) {
  const model = app.models.retentionRules;
  const fallback: Record<TimedCategory, number> = { 'activity-log': opts.config.ACTIVITY_RETENTION_DAYS, 'device-info': opts.config.DEVICE_RETENTION_DAYS };
  const known = new Map<string, { periodDays: number; asOf: number }>();
  const api: RetentionPeriods = {
    async refresh() {
      for (const r of await model.find({ _id: { $in: Object.keys(fallback) } }).lean()) {
        if ((known.get(r._id)?.asOf ?? -Infinity) <= r.asOf.getTime()) known.set(r._id, { periodDays: r.periodDays, asOf: r.asOf.getTime() });
      }
    },
    until: (category, from) => new Date(from.getTime() + (known.get(category)?.periodDays ?? fallback[category]) * DAY_MS),
    governed: (category) => known.has(category),
    async apply(sweep) {
      const asOf = new Date(sweep.asOf);
      for (const category of Object.keys(fallback)) {
        // A rule for identity wins over the category's general rule (5.2: per-service overrides).
        const rule = sweep.rules.find((r) => r.category === category && r.service === 'identity') ?? sweep.rules.find((r) => r.category === category && !r.service);
        if (!rule) continue;
        // Only a newer sweep or announcement counts, whichever instance stored the one before: the
        // stored date decides (an instance's own memory may be behind another's write). An older one
        // (a sweep retried late) changes nothing, and this instance takes the stored periods.
        const stored = await storeIfNewer(model, category, 'asOf', { periodDays: rule.periodDays, action: rule.action, sweepId: sweep.sweepId, asOf });
        if (stored) known.set(category, { periodDays: rule.periodDays, asOf: asOf.getTime() });
        else await api.refresh();
      }
    },
  };
  app.decorate('retentionPeriods', api);
  app.addHook('onReady', () => api.refresh());
}, { name: 'identity-retention-periods', dependencies: ['identity-models'] });
