// One server of the benchmark, in its own process so that the load generator and each server do not
// share an event loop: `hello` (bare Fastify), `upstream` (the consent decision route: the real consent
// service when its decision API exists, else the fixture upstream that verifies tokens like every
// service), `gateway-on` / `gateway-off` (the real gateway with token verification on / off).
// Prints `READY <port>` when listening. Configured from the environment by bench/gateway.bench.ts.
import Fastify from 'fastify';
import { loadConfig } from '@pipp/service-kit';
import type { AddressInfo } from 'node:net';
import { buildApp } from '../src/app.js';
import { ConfigSchema } from '../src/config.js';
import { startUpstream } from '../test/fixtures/upstream.js';

const kind = process.argv[2];
let port: number;
if (kind === 'hello') {
  const app = Fastify({ logger: false });
  app.get('/', async () => ({ hello: 'world' }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as AddressInfo).port;
} else if (kind === 'upstream') {
  const upstream = await startUpstream('consent', { jwksUrl: process.env.AUTH_JWKS_URL! });
  port = Number(new URL(upstream.url).port);
} else if (kind === 'gateway-on' || kind === 'gateway-off') {
  const app = await buildApp(loadConfig(ConfigSchema, process.env), { verifyTokens: kind === 'gateway-on' });
  await app.listen({ host: '127.0.0.1', port: 0 });
  await app.apiDocs.refresh();
  port = (app.server.address() as AddressInfo).port;
} else {
  throw new Error(`unknown server kind ${kind}`);
}
process.stdout.write(`READY ${port}\n`);
