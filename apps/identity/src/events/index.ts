import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../config.js';
import type { KeyRing } from '../plugins/keys.js';

/** identity's consumers (policy versions, consent changes, function shutdowns, erasure, sweeps). */
export const identityEvents = fp(async function events(app: FastifyInstance, _opts: { config: Config; keys: KeyRing }) {
  app.kafka.consume({
    name: 'policy',
    handlers: {
      /** Keeps the current version of each policy document: registration acknowledges it (preamble). */
      'privacy.policy.published': async (event) => {
        const { documentId, version, effectiveAt } = event.payload;
        await app.models.policyVersions.updateOne(
          { _id: documentId, version: { $lt: version } },
          { $set: { version, publishedAt: new Date(effectiveAt) } },
        );
        await app.models.policyVersions.updateOne(
          { _id: documentId },
          { $setOnInsert: { version, publishedAt: new Date(effectiveAt) } },
          { upsert: true },
        ).catch((err: { code?: number }) => { if (err.code !== 11000) throw err; });
      },
    },
  });
}, { name: 'identity-events', dependencies: ['identity-models'] });
