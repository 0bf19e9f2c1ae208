// One server of the benchmark, in its own process so that the load generator and each server do not
// share an event loop: `hello` (bare Fastify), `consent` (the real consent service and its decision
// API, on its own test database), `gateway-on` / `gateway-off` (the real gateway with token
// verification on / off).
// Prints `READY <port>` when listening. Configured from the environment by bench/gateway.bench.ts.
import Fastify from 'fastify';
import { loadConfig } from '@pipp/service-kit';
import type { AddressInfo } from 'node:net';
import { buildApp } from '../src/app.js';
import { ConfigSchema } from '../src/config.js';

const kind = process.argv[2];
let port: number;
let close: () => Promise<unknown> = async () => undefined;
process.on('SIGTERM', () => { void close().finally(() => process.exit(0)); });
if (kind === 'hello') {
  const app = Fastify({ logger: false });
  app.get('/', async () => ({ hello: 'world' }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as AddressInfo).port;
  close = () => app.close();
} else if (kind === 'consent') {
  const consent = await import('@pipp/consent/app');
  const { ConfigSchema: ConsentConfig } = await import('@pipp/consent/config');
  const app = await consent.buildApp(loadConfig(ConsentConfig, process.env));
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as AddressInfo).port;
  close = () => app.close();
} else if (kind === 'gateway-on' || kind === 'gateway-off') {
  const app = await buildApp(loadConfig(ConfigSchema, process.env), { verifyTokens: kind === 'gateway-on' });
  await app.listen({ host: '127.0.0.1', port: 0 });
  await app.apiDocs.refresh();
  port = (app.server.address() as AddressInfo).port;
  close = () => app.close();
} else {
  throw new Error(`unknown server kind ${kind}`);
}
process.stdout.write(`READY ${port}\n`);
