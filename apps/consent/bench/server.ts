// A server for the decision benchmark, run as its own process so the load generator does not share its
// event loop: `hello` (bare Fastify hello-world, the baseline) or `consent` (the real consent service
// with its real Kafka and MongoDB connections). Prints {"port": n} on stdout once listening.
import Fastify from 'fastify';
import { loadConfig } from '@pipp/service-kit';
// The built service (npx turbo run build), as it runs in production.
import { buildApp } from '../dist/app.js';
import { ConfigSchema, type Config } from '../dist/config.js';

const mode = process.argv[2];
let app;
if (mode === 'hello') {
  app = Fastify({ logger: false });
  app.post('/hello', async () => ({ hello: 'world' }));
} else {
  app = await buildApp(loadConfig(ConfigSchema, process.env) as Config);
}
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`);
const stop = async () => { await app.close(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// A clean exit on SIGTERM, so that a CPU profile (BENCH_CPU_PROFILE) is written.
process.once('SIGTERM', () => { void app.close().then(() => process.exit(0)); });
