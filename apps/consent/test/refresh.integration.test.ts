// Without events, an instance still converges through the database: instance B shares A's database
// but listens on other topics (as if the broker were down or B had missed A's events), so only its
// refresh — which reads the ledger when an append was counted — can tell it of A's changes.
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { Harness, ask, change, register, waitFor, type ConsentApp } from './helpers.js';

let h: Harness;
let a: ConsentApp;
let b: ConsentApp;
let env: Record<string, string>;

beforeAll(async () => {
  h = await Harness.start();
  env = h.env({ PROJECTION_REFRESH_MS: '200' });
  a = await h.app(env);
  b = await h.app({ ...env, KAFKA_TOPIC_PREFIX: h.env().KAFKA_TOPIC_PREFIX! });
});
afterAll(async () => {
  await h?.close();
});

it('an instance that receives no events honours a withdrawal made on another within a second (PIPL art. 15: a withdrawal takes effect at once)', async () => {
  const subjectId = await register(a, env);
  const personalization = { subjectId, purpose: 'personalization', categories: ['activity-log'] };
  expect((await change(h, a, subjectId, [{ purpose: 'personalization', state: 'granted' }])).statusCode).toBe(201);
  await waitFor(async () => (await ask(h, b, personalization)).allowed, { what: 'B to learn the grant from the ledger', timeoutMs: 5000 });

  expect((await change(h, a, subjectId, [{ purpose: 'personalization', state: 'withdrawn' }])).statusCode).toBe(201);
  await new Promise((r) => setTimeout(r, 1000));
  expect(await ask(h, b, personalization)).toMatchObject({ allowed: false });
});

it('reads the ledger again after a failed read, not only at the 30 s backstop', async () => {
  const subjectId = await register(a, env);
  const personalization = { subjectId, purpose: 'personalization', categories: ['activity-log'] };
  expect((await change(h, a, subjectId, [{ purpose: 'personalization', state: 'granted' }])).statusCode).toBe(201);
  await waitFor(async () => (await ask(h, b, personalization)).allowed, { what: 'B to learn the grant from the ledger', timeoutMs: 5000 });

  // B's next read of the ledger fails (the database busy, say); the one after must still happen.
  const find = vi.spyOn(b.models.records, 'find').mockImplementationOnce(() => { throw new Error('the database is busy'); });
  expect((await change(h, a, subjectId, [{ purpose: 'personalization', state: 'withdrawn' }])).statusCode).toBe(201);
  await new Promise((r) => setTimeout(r, 1000));
  expect(find.mock.calls.length).toBeGreaterThanOrEqual(2);
  expect(await ask(h, b, personalization)).toMatchObject({ allowed: false });
  find.mockRestore();
});

it('an instance that receives no events sees each catalogue change made on another, not only the first', async () => {
  // Each change moves the catalogue's mark in `revisions` to a new value (markChanged): a value B has
  // already seen would leave B with the older catalogue.
  const purpose = {
    title: 'Product research', description: 'Studying how the product is used', kind: 'additional', policyClause: null,
    categories: ['activity-log'], legalBases: ['consent'], why: 'we study usage to design new features',
  };
  const titleOnB = async () => ((await b.inject({ url: '/v1/consent/public/catalogue' })).json().purposes as { id: string; title: string }[]).find((p) => p.id === 'research-r')?.title;
  const put = (title: string, expectedRevision: number) => a.inject({ method: 'PUT', url: '/v1/consent/admin/purposes/research-r', headers: h.bearer('dpo-1', 'dpo'), payload: { ...purpose, title, expectedRevision } });
  expect((await put('Product research', 0)).statusCode).toBe(201);
  await waitFor(async () => (await titleOnB()) === 'Product research', { what: 'B to load the new purpose', timeoutMs: 5000 });
  expect((await put('Product research, renamed', 1)).statusCode).toBe(200);
  await waitFor(async () => (await titleOnB()) === 'Product research, renamed', { what: 'B to load the second change', timeoutMs: 5000 });
});
