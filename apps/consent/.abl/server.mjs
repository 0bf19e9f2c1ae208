import Fastify from 'fastify';
import { createFastify } from '@pipp/service-kit';
import { DecisionRequestSchema, DecisionSchema } from '@pipp/contracts';
const mode = process.argv[2];
const decision = { allowed: true, basis: { kind: 'consent', consentRecordId: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b' }, clause: '2.1.1', reason: 'The subject granted consent for purpose account (express consent recorded at registration)', policyVersion: 1 };
const cfg = { LOG_LEVEL: 'warn', LOG_FORMAT: 'json', REQUEST_TIMEOUT_MS: 30000 };
let app;
if (mode === 'hello') { app = Fastify({ logger: false }); app.post('/v1/consent/decisions', async () => ({ hello: 'world' })); }
else if (mode === 'bare-schema') {
  app = Fastify({ logger: false });
  app.post('/v1/consent/decisions', { schema: { body: DecisionRequestSchema, response: { 200: DecisionSchema } } }, async () => decision);
} else if (mode === 'bare-noschema') {
  app = Fastify({ logger: false });
  app.post('/v1/consent/decisions', async () => decision);
} else if (mode === 'kit-schema') {
  app = createFastify({ service: 'consent', config: cfg });
  app.post('/v1/consent/decisions', { logLevel: 'warn', schema: { body: DecisionRequestSchema, response: { 200: DecisionSchema } } }, async () => decision);
} else if (mode === 'kit-flat') {
  app = createFastify({ service: 'consent', config: cfg });
  const flat = { type: 'object', properties: { allowed: { type: 'boolean' }, basis: { type: ['object', 'null'], properties: { kind: { type: 'string' }, consentRecordId: { type: 'string' }, legalBasis: { type: 'string' }, evidenceRef: { type: 'string' } } }, clause: { type: 'string' }, reason: { type: 'string' }, policyVersion: { type: 'integer' } } };
  app.post('/v1/consent/decisions', { logLevel: 'warn', schema: { body: DecisionRequestSchema, response: { 200: flat } } }, async () => decision);
}
if (mode.startsWith('k-')) {
  const off = new Set(mode.slice(2).split('+'));
  const { loggerOptions } = await import('@pipp/service-kit/dist/logger.js').catch(() => import('/work/main/packages/service-kit/dist/logger.js'));
  const { lazyChildLogger } = await import('/work/main/packages/service-kit/dist/lazy-logger.js');
  const { LogController } = await import('fastify');
  const { randomUUID } = await import('node:crypto');
  const o = {};
  if (!off.has('log')) Object.assign(o, { logger: loggerOptions('consent', 'warn', 'json'), logController: new LogController({ requestIdLogLabel: 'requestId' }), childLoggerFactory: lazyChildLogger }); else o.logger = false;
  if (!off.has('reqid')) Object.assign(o, { requestIdHeader: false, genReqId: (req) => randomUUID() });
  if (!off.has('timeout')) Object.assign(o, { requestTimeout: 30000, http: { requestTimeout: 30000, headersTimeout: 30000, connectionsCheckingInterval: 1000 } });
  if (!off.has('misc')) Object.assign(o, { bodyLimit: 256 * 1024, onProtoPoisoning: 'error', onConstructorPoisoning: 'error', return503OnClosing: true, forceCloseConnections: 'idle' });
  if (!off.has('ajv')) o.ajv = { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: true } };
  app = Fastify(o);
  if (!off.has('hooks')) {
    app.addHook('onRequest', (request, reply, done) => { void reply.header('x-request-id', request.id); done(); });
    if (!off.has('onsend')) app.addHook('onSend', (_r, reply, payload, done) => { done(null, payload); });
  }
  let pre;
  if (off.has('AUTH')) {
    const { TestAuthority } = await import('@pipp/testing');
    const { authPlugin } = await import('/work/main/packages/service-kit/dist/plugins/auth.js');
    const a = await TestAuthority.start();
    await app.register(authPlugin, { issuer: a.issuer, audience: a.audience, jwksUrl: a.jwksUrl });
    process.stdout.write(`TOKEN ${a.token({ sub: 'data-sharing', role: 'service', expiresInS: 3600 })}\n`);
    pre = app.requireRole('service', 'operator', 'dpo');
  }
  app.post('/v1/consent/decisions', { logLevel: 'warn', ...(pre ? { preHandler: pre } : {}), schema: { body: DecisionRequestSchema, response: { 200: DecisionSchema } } }, async () => decision);
}
if (mode === 'consent') {
  const { TestAuthority, isolatedEnv } = await import('@pipp/testing');
  const { loadConfig } = await import('@pipp/service-kit');
  const { buildApp } = await import('/work/main/apps/consent/dist/app.js');
  const { ConfigSchema } = await import('/work/main/apps/consent/dist/config.js');
  const a = await TestAuthority.start();
  const env = isolatedEnv('consentabl', { AUTH_JWKS_URL: a.jwksUrl, CONSENT_PSEUDONYM_KEY: 'bench-pseudonym-key-0123456789abcdef0123', LOG_LEVEL: 'warn', KAFKA_PARTITIONS: '1' });
  app = await buildApp(loadConfig(ConfigSchema, { ...process.env, ...env }));
  process.stdout.write(`TOKEN ${a.token({ sub: 'data-sharing', role: 'service', expiresInS: 3600 })}\n`);
}
await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`READY ${app.server.address().port}\n`);
process.on('SIGINT', () => process.exit(0));
