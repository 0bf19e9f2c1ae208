import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import disclosures from './disclosures/index.js';
import erasures from './erasures/index.js';
import indirect from './indirect-collections/index.js';
import independent from './independent-authorizations/index.js';
import notices from './deletion-notices/index.js';
import otherPeople from './other-people-data/index.js';
import recipients from './recipients/index.js';
import releases from './releases/index.js';
import shares from './shares/index.js';

/** Registers one route plugin per resource of the data-sharing service, under /v1/data-sharing. */
export default async function routes(app: FastifyInstance, { config }: { config: Config }) {
  const opts = { config };
  await app.register(recipients, opts);
  await app.register(shares, opts);
  await app.register(disclosures, opts);
  await app.register(indirect, opts);
  await app.register(otherPeople, opts);
  await app.register(independent, opts);
  await app.register(releases, opts);
  await app.register(notices, opts);
  await app.register(erasures, opts);
}
