// A withdrawal takes effect at once for every service: with two consent instances (one database, one
// broker) and another service's processing path asking through the real consent client and its cache,
// a sharing request issued one second after the withdrawal is refused — on either instance.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Harness, change, register, waitFor, type ConsentApp } from './helpers.js';
import { buildProcessor } from './fixtures/processor.js';

let h: Harness;
let a: ConsentApp;
let b: ConsentApp;
let env: Record<string, string>;
let processorA: Awaited<ReturnType<typeof buildProcessor>>;
let processorB: Awaited<ReturnType<typeof buildProcessor>>;

beforeAll(async () => {
  h = await Harness.start();
  env = h.env({ PROJECTION_REFRESH_MS: '5000' }); // only events keep instance B current within the second
  a = await h.app(env);
  b = await h.app(env);
  for (const app of [a, b]) await app.listen({ host: '127.0.0.1', port: 0 });
  const url = (app: ConsentApp) => `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const token = async () => h.authority.token({ sub: 'data-sharing', role: 'service' });
  const processorEnv = { ...env, MONGO_DB: `${env.MONGO_DB}_proc` };
  h.databases.add(processorEnv.MONGO_DB);
  processorA = await buildProcessor(processorEnv, url(a), token);
  processorB = await buildProcessor(processorEnv, url(b), token);
});
afterAll(async () => {
  await Promise.allSettled([processorA?.close(), processorB?.close()]);
  await h?.close();
});

const share = (processor: typeof processorA, subjectId: string) =>
  processor.inject({ method: 'POST', url: '/shares', payload: { subjectId, recipientId: 'acme', categories: ['transaction-record'] } });

it('a withdrawal on one instance blocks a sharing request issued one second later through either instance, despite the client cache', async () => {
  const subjectId = await register(a, env);
  const granted = await change(h, a, subjectId, [{ purpose: 'sharing', scope: { recipientId: 'acme' }, state: 'granted' }]);
  expect(granted.statusCode).toBe(201);
  // Both processing paths have asked and cached "allowed" (B learnt the grant from the event).
  await waitFor(async () => (await share(processorB, subjectId)).statusCode === 201, { what: 'instance B to learn the grant' });
  expect((await share(processorA, subjectId)).statusCode).toBe(201);
  expect((await share(processorB, subjectId)).statusCode).toBe(201);

  const withdrawn = await change(h, a, subjectId, [{ purpose: 'sharing', scope: { recipientId: 'acme' }, state: 'withdrawn' }]);
  expect(withdrawn.statusCode).toBe(201);
  const at = Date.now();
  await new Promise((r) => setTimeout(r, 1000 - (Date.now() - at)));
  for (const processor of [processorA, processorB]) {
    const refused = await share(processor, subjectId);
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ clause: '3.1.2' });
    expect(refused.json().message).toMatch(/withdrawn on/);
  }
});

it('a withdrawal is as easy as the grant: one call, and a withdrawal without scope ends every consent under the purpose', async () => {
  const subjectId = await register(a, env);
  await change(h, a, subjectId, [
    { purpose: 'sharing', scope: { recipientId: 'acme' }, state: 'granted' },
    { purpose: 'sharing', scope: { recipientId: 'globex' }, state: 'granted' },
  ]);
  const res = await change(h, b, subjectId, [{ purpose: 'sharing', state: 'withdrawn' }]);
  expect(res.statusCode).toBe(201);
  expect(res.json().records.map((r: { scope?: { recipientId: string } }) => r.scope?.recipientId ?? '(purpose)').sort()).toEqual(['(purpose)', 'acme', 'globex']);
  await waitFor(() => a.projection.subject(subjectId)?.consents.get('sharing|recipient:globex')?.state === 'withdrawn', { what: 'instance A to learn the withdrawal', timeoutMs: 1000 });
});
