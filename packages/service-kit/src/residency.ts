import {
  RESIDENCY_EXCEPTIONS, createEvent, type EventPayload, type ResidencyException, type ServiceName,
} from '@pipp/contracts';
import { Type, type TProperties } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Schema } from 'mongoose';
import { randomUUID } from 'node:crypto';
import { outboxPlugin } from './outbox.js';
import { upsertRaced } from './upsert.js';

const COUNTRY = '^[A-Z]{2}$';

/**
 * Where a service's stores are (policy 5.3 storage location, PIPL art. 40), part of every service's
 * config (docs/configuration.md):
 * - `HOME_REGION`: where PI collected in our operations must stay (default `CN`, mainland China;
 *   Hong Kong, Macao and Taiwan have their own codes and so count as outside);
 * - `DATA_LOCATION`: ISO 3166-1 alpha-2 code of where this service's stores are (default `CN`);
 * - `DATA_STORE_LOCATIONS`: per-store overrides or extra stores, `store=CC` comma-separated
 *   (e.g. `backups=SG`); the stores are `mongodb` (if the service has a database), `kafka`, and these;
 * - `DATA_LOCATION_EXCEPTION` (`5.3.1` law, `5.3.2` separate authorization, `5.3.3` cross-border
 *   contract) with `DATA_LOCATION_EXCEPTION_REF`, the evidence (statute, consent purpose, contract);
 * - `DATA_RESIDENCY_MODE`: `refuse` (default) stops a service whose stores break 5.3 from starting;
 *   `flag` only warns and reports it (for a migration under way).
 */
export const ResidencyConfigProperties = {
  HOME_REGION: Type.String({ pattern: COUNTRY, default: 'CN', description: 'Region PI must be stored in (policy 5.3), ISO 3166-1 alpha-2' }),
  DATA_LOCATION: Type.String({ pattern: COUNTRY, default: 'CN', description: "Where this service's stores are, ISO 3166-1 alpha-2" }),
  DATA_STORE_LOCATIONS: Type.String({ default: '', pattern: '^([a-z0-9-]+=[A-Z]{2}(,[a-z0-9-]+=[A-Z]{2})*)?$', description: 'Per-store locations, store=CC comma-separated (e.g. backups=SG)' }),
  DATA_LOCATION_EXCEPTION: Type.Optional(Type.Union(RESIDENCY_EXCEPTIONS.map((c) => Type.Literal(c)), { description: 'Policy 5.3 exception allowing storage outside the home region' })),
  DATA_LOCATION_EXCEPTION_REF: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: 'Evidence of the 5.3 exception (statute, consent purpose, contract)' })),
  DATA_RESIDENCY_MODE: Type.Union([Type.Literal('refuse'), Type.Literal('flag')], { default: 'refuse', description: "A store outside the home region without a 5.3 exception: 'refuse' to start, or only 'flag' it (start-up warning and retention's report)" }),
} satisfies TProperties;

export interface ResidencyConfig {
  HOME_REGION: string;
  DATA_LOCATION: string;
  DATA_STORE_LOCATIONS: string;
  DATA_LOCATION_EXCEPTION?: ResidencyException | undefined;
  DATA_LOCATION_EXCEPTION_REF?: string | undefined;
  DATA_RESIDENCY_MODE: 'refuse' | 'flag';
}

export type ResidencyDeclaration = EventPayload<'privacy.residency.declared'>;

/** The outcome of checking a declaration against the home region (policy 5.3). */
export interface ResidencyAssessment {
  /** Stores outside the home region. */
  outside: { store: string; location: string }[];
  /** True when some store is outside and no 5.3 exception with a reference covers it. */
  flagged: boolean;
  /** One line saying why, for logs and reports. */
  summary: string;
}

/**
 * Checks where stores are against the home region (policy 5.3): a store elsewhere is allowed only
 * under a 5.3.1–5.3.3 exception that names its evidence. Pure.
 */
export function assessResidency(d: Pick<ResidencyDeclaration, 'homeRegion' | 'stores' | 'exception'>): ResidencyAssessment {
  const outside = d.stores.filter((s) => s.location !== d.homeRegion);
  if (!outside.length) return { outside, flagged: false, summary: `all stores in the home region ${d.homeRegion}` };
  const where = outside.map((s) => `${s.store} in ${s.location}`).join(', ');
  if (d.exception?.reference) {
    return { outside, flagged: false, summary: `${where} outside ${d.homeRegion} under policy ${d.exception.clause} (${d.exception.reference})` };
  }
  return { outside, flagged: true, summary: `${where} outside the home region ${d.homeRegion} without a policy 5.3 exception` };
}

/**
 * The declaration of a service from its config: its stores (`mongodb` when it has a database,
 * `kafka`, plus `DATA_STORE_LOCATIONS` entries) and their locations.
 */
export function residencyDeclaration(service: ServiceName, config: ResidencyConfig, opts: { mongo: boolean; instanceId?: string; now?: Date }): ResidencyDeclaration {
  const locations = new Map<string, string>();
  if (opts.mongo) locations.set('mongodb', config.DATA_LOCATION);
  locations.set('kafka', config.DATA_LOCATION);
  for (const pair of config.DATA_STORE_LOCATIONS.split(',').filter(Boolean)) {
    const [store, location] = pair.split('=') as [string, string];
    locations.set(store, location);
  }
  const stores = [...locations].map(([store, location]) => ({ store, location }));
  const exception = config.DATA_LOCATION_EXCEPTION && config.DATA_LOCATION_EXCEPTION_REF
    ? { clause: config.DATA_LOCATION_EXCEPTION, reference: config.DATA_LOCATION_EXCEPTION_REF }
    : undefined;
  const base = { homeRegion: config.HOME_REGION, stores, ...(exception ? { exception } : {}) };
  return {
    service,
    instanceId: opts.instanceId ?? randomUUID(),
    ...base,
    flagged: assessResidency(base).flagged,
    declaredAt: (opts.now ?? new Date()).toISOString(),
  };
}

/**
 * Why a service must not start (policy 5.3): a store outside the home region and no 5.3 exception
 * naming its evidence, while `DATA_RESIDENCY_MODE` is `refuse` (the default); else undefined. Checked
 * before any store is connected (infrastructurePlugin raises it as a ConfigError on `DATA_LOCATION`).
 */
export function residencyRefusal(service: ServiceName, config: ResidencyConfig, opts: { mongo: boolean }): string | undefined {
  if (config.DATA_RESIDENCY_MODE === 'flag') return undefined;
  const assessment = assessResidency(residencyDeclaration(service, config, opts));
  return assessment.flagged
    ? `breaks policy 5.3: ${assessment.summary}; set DATA_LOCATION_EXCEPTION and DATA_LOCATION_EXCEPTION_REF, or DATA_RESIDENCY_MODE=flag to start anyway`
    : undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Where this service's stores are and whether that breaks policy 5.3 (see residencyPlugin). */
    residency: ResidencyDeclaration & { assessment: ResidencyAssessment };
  }
}

/**
 * Declares where the service's stores are (policy 5.3): logs it at start-up (a warning when a store is
 * outside the home region without an exception) and announces `privacy.residency.declared` through
 * the outbox (straight from the producer for a service without a database), for the retention
 * service's report. Registered by `infrastructurePlugin`.
 */
export const residencyPlugin = fp(async function residency(app: FastifyInstance, opts: { service: ServiceName; config: ResidencyConfig; mongo: boolean }) {
  const declaration = residencyDeclaration(opts.service, opts.config, { mongo: opts.mongo });
  const assessment = assessResidency(declaration);
  app.decorate('residency', { ...declaration, assessment });
  if (opts.config.DATA_LOCATION_EXCEPTION && !opts.config.DATA_LOCATION_EXCEPTION_REF) {
    app.log.warn({ exception: opts.config.DATA_LOCATION_EXCEPTION }, 'data residency: DATA_LOCATION_EXCEPTION is ignored without DATA_LOCATION_EXCEPTION_REF');
  }
  const model = opts.mongo
    ? app.outbox.register(app.mongo.model('PippResidencyDeclaration', new Schema({ _id: String, declaration: Schema.Types.Mixed }, { collection: 'residency_declaration', versionKey: false }).plugin(outboxPlugin)))
    : undefined;

  app.addHook('onReady', async () => {
    const fields = { residency: { homeRegion: declaration.homeRegion, stores: declaration.stores, exception: declaration.exception?.clause } };
    if (assessment.flagged) app.log.warn(fields, `data residency (policy 5.3): ${assessment.summary}`);
    else app.log.info(fields, `data residency (policy 5.3): ${assessment.summary}`);
    if (model) {
      const entry = app.outbox.entry('privacy.residency.declared', { payload: declaration, key: opts.service });
      // Two instances starting together upsert the same declaration.
      await upsertRaced(() => app.outbox.update(model, { _id: 'self' }, { $set: { declaration } }, [entry], { upsert: true }));
    } else {
      // No database (the stateless gateway): no state changes here, the announcement itself is all.
      const event = createEvent('privacy.residency.declared', { source: opts.service, payload: declaration });
      await app.kafka.producer.send({ topic: app.kafka.topic('privacy.residency.declared'), acks: -1, messages: [{ key: opts.service, value: JSON.stringify(event) }] });
    }
  });
}, { name: 'pipp-residency', dependencies: ['pipp-kafka'] });
