import { SERVICES, type EventPayload, type ServiceName } from '@pipp/contracts';
import { assessResidency } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { createHash } from 'node:crypto';
import type { ResidencyRecordDoc } from './models.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Data-residency declarations and the 5.3 report (see ResidencyReport). */
    residencyReport: ResidencyReport;
  }
}

export interface ResidencyReportEntry {
  service: ServiceName;
  status: 'compliant' | 'excepted' | 'flagged' | 'undeclared';
  summary: string;
  declarations: (Omit<ResidencyRecordDoc, '_id'> & { assessment: string })[];
}

/**
 * Data residency (policy 5.3, PIPL art. 40): keeps every distinct declaration each service announced
 * (`privacy.residency.declared`, from the kit at each start) and reports, per service, whether its
 * stores are in the home region, abroad under a 5.3 exception, abroad without one (flagged), or never
 * declared. The verdict is recomputed here from the stores, not trusted from the declaration.
 */
export class ResidencyReport {
  constructor(private readonly app: FastifyInstance) {}

  async record(d: EventPayload<'privacy.residency.declared'>, now = new Date()): Promise<void> {
    const fingerprint = createHash('sha256').update(JSON.stringify([d.homeRegion, d.stores, d.exception ?? null])).digest('hex').slice(0, 16);
    const flagged = assessResidency(d).flagged;
    await this.app.store.residency.updateOne({ _id: `${d.service}:${fingerprint}` }, {
      $set: { service: d.service, homeRegion: d.homeRegion, stores: d.stores, flagged, lastSeenAt: new Date(d.declaredAt), ...(d.exception ? { exception: d.exception } : {}) },
      $setOnInsert: { firstSeenAt: now },
      $inc: { instances: 1 },
    }, { upsert: true });
    if (flagged) this.app.log.warn({ service: d.service, stores: d.stores, homeRegion: d.homeRegion }, 'data residency: a service stores PI outside the home region without a policy 5.3 exception');
  }

  /** The report: one entry per service of the platform, flagged ones first. */
  async report(): Promise<ResidencyReportEntry[]> {
    const all = await this.app.store.residency.find({}).sort({ lastSeenAt: -1 }).lean();
    const order = { flagged: 0, undeclared: 1, excepted: 2, compliant: 3 } as const;
    return SERVICES.map((service): ResidencyReportEntry => {
      const mine = all.filter((r) => r.service === service);
      if (!mine.length) return { service, status: 'undeclared', summary: `${service} has not declared where its stores are`, declarations: [] };
      const declarations = mine.map(({ _id, ...r }) => ({ ...r, assessment: assessResidency({ homeRegion: r.homeRegion, stores: r.stores, ...(r.exception ? { exception: r.exception as never } : {}) }).summary }));
      const flagged = mine.filter((r) => r.flagged);
      const excepted = mine.some((r) => r.exception && r.stores.some((s) => s.location !== r.homeRegion));
      const status = flagged.length ? 'flagged' : excepted ? 'excepted' : 'compliant';
      return { service, status, summary: (flagged.length ? declarations.find((x) => x.flagged)! : declarations[0]!).assessment, declarations };
    }).sort((a, b) => order[a.status] - order[b.status]);
  }
}

export const residencyReportPlugin = fp(async function residencyReport(app: FastifyInstance) {
  app.decorate('residencyReport', new ResidencyReport(app));
}, { name: 'retention-residency', dependencies: ['retention-models'] });
