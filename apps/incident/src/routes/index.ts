import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import announcementRoutes from './announcements/index.js';
import incidentRoutes from './incidents/index.js';
import notificationRoutes from './notifications/index.js';
import reportRoutes from './reports/index.js';

/** Registers one route plugin per resource of the incident service, under /v1/incident. */
export default async function routes(app: FastifyInstance, opts: { config: Config }) {
  await app.register(incidentRoutes, { config: opts.config });
  await app.register(notificationRoutes);
  await app.register(announcementRoutes);
  await app.register(reportRoutes, { config: opts.config });
}
