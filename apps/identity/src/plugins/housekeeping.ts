import type { DataCategory } from '@pipp/contracts';
import { leavingHeld } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../config.js';

/**
 * Purges what has outlived its purpose (policy 5.1: keep PI only as long as necessary): spent codes,
 * counters, challenges, the SMS sink, ended sessions, pending phone changes, audit records past their
 * retention period, and device, sign-in and activity records past theirs until the retention service
 * governs their category (then its sweeps erase or anonymize them as its policy says; see
 * RetentionPeriods). FerretDB has no TTL indexes, so this runs every `intervalMs` (default 5 min) and
 * once at start.
 */
export async function purgeExpired(app: FastifyInstance, now = new Date()): Promise<number> {
  const m = app.models;
  const byPurge = [m.otpCodes, m.counters, m.smsSink, m.challenges, m.sessions, m.phoneChanges, m.legalHolds] as const;
  const periods = app.retentionPeriods;
  await periods.refresh(); // a sweep another instance took may have brought a period
  type Dated = { deleteMany(filter: object): { exec(): Promise<{ deletedCount: number }> } };
  const byRetention: [Dated, DataCategory][] = [
    ...(periods.governed('device-info') ? [] : [[m.devices, 'device-info'], [m.signIns, 'device-info']] as [Dated, DataCategory][]),
    ...(periods.governed('activity-log') ? [] : [[m.activity, 'activity-log']] as [Dated, DataCategory][]),
  ];
  let n = 0;
  for (const model of byPurge) n += (await (model as typeof m.counters).deleteMany({ purgeAt: { $lt: now } })).deletedCount;
  // What a legal hold covers stays past its date (policy 4.1): the holds retention announced.
  const heldSubjects = await app.legalHolds.heldSubjects(undefined, now);
  for (const [model, category] of byRetention) n += (await model.deleteMany(leavingHeld({ retentionUntil: { $lt: now } }, heldSubjects, category)).exec()).deletedCount;
  n += (await m.audit.deleteMany({ retentionUntil: { $lt: now } })).deletedCount;
  return n;
}

export const housekeepingPlugin = fp(async function housekeeping(app: FastifyInstance, _opts: { config: Config }) {
  let timer: NodeJS.Timeout | undefined;
  const run = () => {
    purgeExpired(app).catch((err: unknown) => app.log.warn({ err }, 'purge of expired records failed; will retry'))
      .finally(() => { timer = setTimeout(run, 5 * 60_000); timer.unref(); });
  };
  app.addHook('onReady', async () => { run(); });
  app.addHook('onClose', async () => { if (timer) clearTimeout(timer); });
}, { name: 'identity-housekeeping', dependencies: ['identity-models'] });
