import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import audit from './audit/index.js';
import backups from './backups/index.js';
import erasureRequests from './erasure-requests/index.js';
import keptRecords from './kept-records/index.js';
import legalHolds from './legal-holds/index.js';
import residency from './residency/index.js';
import retentionPolicies from './retention-policies/index.js';
import shutdowns from './shutdowns/index.js';
import subjectErasureRequests from './subject-erasure-requests/index.js';
import sweeps from './sweeps/index.js';

/** Registers one route plugin per resource of the retention service, under /v1/retention. */
export default async function routes(app: FastifyInstance, opts: { config: Config }) {
  await app.register(subjectErasureRequests);
  await app.register(erasureRequests);
  await app.register(retentionPolicies);
  await app.register(legalHolds, { config: opts.config });
  await app.register(keptRecords);
  await app.register(backups);
  await app.register(sweeps);
  await app.register(shutdowns);
  await app.register(residency);
  await app.register(audit);
}
