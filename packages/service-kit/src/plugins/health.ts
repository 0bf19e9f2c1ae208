import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

const Check = Type.Object({ ok: Type.Boolean(), latencyMs: Type.Number(), error: Type.Optional(Type.String()) });

/**
 * `/livez`: the process is up. `/readyz`: 200 only when MongoDB answers a ping, the Kafka broker
 * answers a metadata request and no consumer has crashed for good; otherwise 503 with each check.
 */
export const healthPlugin = fp(async function health(app: FastifyInstance) {
  app.get('/livez', {
    schema: { hide: true, response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
    logLevel: 'warn',
  }, async () => ({ status: 'ok' as const }));

  const checks: Record<string, () => Promise<void>> = {};
  if (app.hasDecorator('mongo')) checks.mongo = () => app.mongo.ping();
  if (app.hasDecorator('kafka')) {
    checks.kafka = () => app.kafka.ping();
    checks.consumers = async () => {
      const failed = app.kafka.failedConsumers();
      if (failed.length) throw new Error(`crashed: ${failed.join(', ')}`);
    };
  }

  app.get('/readyz', {
    schema: {
      hide: true,
      response: {
        200: Type.Object({ status: Type.String(), checks: Type.Record(Type.String(), Check) }),
        503: Type.Object({ status: Type.String(), checks: Type.Record(Type.String(), Check) }),
      },
    },
    logLevel: 'warn',
  }, async (_request, reply) => {
    const results = await Promise.all(Object.entries(checks).map(async ([name, check]) => {
      const started = performance.now();
      try {
        await check();
        return [name, { ok: true, latencyMs: Math.round(performance.now() - started) }] as const;
      } catch (err) {
        return [name, { ok: false, latencyMs: Math.round(performance.now() - started), error: (err as Error).message }] as const;
      }
    }));
    const ready = results.every(([, r]) => r.ok);
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not-ready', checks: Object.fromEntries(results) });
  });
}, { name: 'pipp-health' });
