import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { IncidentErrors } from '../../errors.js';
import { toAnnouncement } from '../views.js';
import { AnnouncementSchema, IdParams, Limit, Page, Timestamp, errors } from '../schemas.js';

/**
 * Public announcements (policy 5.4.2: when informing subjects one by one is impractical; 2.4.2(5);
 * VI), anonymous, served through the gateway at `/v1/incident/public/announcements…`:
 * - `GET /public/announcements` newest first (`cursor` = the last item's `publishedAt`);
 * - `GET /public/announcements/:id` one, with every element under its heading.
 * Announcements never carry personal data.
 */
export default async function announcementRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const m = app.models;

  app.get('/public/announcements', {
    schema: {
      tags: ['announcements'], summary: 'Public announcements, newest first (anonymous)',
      querystring: Type.Object({ limit: Limit, cursor: Type.Optional(Timestamp) }, { additionalProperties: false }),
      response: { 200: Page(AnnouncementSchema), ...errors(400) },
    },
  }, async (request, reply) => {
    const { limit, cursor } = request.query;
    const docs = await m.announcements.find(cursor ? { publishedAt: { $lt: new Date(cursor) } } : {}).sort({ publishedAt: -1 }).limit(limit + 1).lean();
    const items = docs.slice(0, limit).map(toAnnouncement);
    void reply.header('cache-control', 'public, max-age=30');
    return { items, next: docs.length > limit ? items[items.length - 1]!.publishedAt : null };
  });

  app.get('/public/announcements/:id', {
    schema: { tags: ['announcements'], summary: 'One public announcement (anonymous)', params: IdParams, response: { 200: AnnouncementSchema, ...errors(400, 404) } },
  }, async (request, reply) => {
    const a = await m.announcements.findById(request.params.id).lean();
    if (!a) throw IncidentErrors.announcementNotFound(`No announcement ${request.params.id}`);
    void reply.header('cache-control', 'public, max-age=30');
    return toAnnouncement(a);
  });
}
