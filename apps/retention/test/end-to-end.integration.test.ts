// After an erasure, every service's database is read directly: none of the subject's PI is left
// outside the isolated kept-by-law records (policy 4.1, 4.2, 5.1). The participants here are real
// services built with the kit (two fixture services standing in for identity and incident, each with
// its own database) plus retention itself, with kept-by-law records. The same search over the real
// services' databases, after an erasure through the gateway, is in test/lifecycle.integration.test.ts.
import { loadConfig } from '@pipp/service-kit';
import { waitFor, withMongo } from '@pipp/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildParticipantApp, ParticipantConfigSchema, type Person } from './fixtures/participant-app.js';
import { Harness, scanForPi } from './helpers.js';

let h: Harness;
beforeAll(async () => { h = await Harness.start(); });
afterAll(() => h?.close());

const pi = (id: string) => ({ phone: `+86139${id.replace(/\D/g, '').padStart(8, '7').slice(-8)}`, name: `Zhang ${id}`, email: `${id}@mail.example`, note: `I live at ${id} Road` });

it('leaves none of the subject\'s PI in any service database outside the isolated kept-by-law records', async () => {
  const env = h.env({ ERASURE_PARTICIPANTS: 'identity,incident,retention' });
  const envs = { identity: h.sibling(env, 'identity', { PARTICIPANT_NAME: 'identity' }), incident: h.sibling(env, 'incident', { PARTICIPANT_NAME: 'incident' }) };
  const target = 'subj-e2e-1';
  const bystander = 'subj-e2e-2';
  for (const penv of Object.values(envs)) {
    await withMongo((c) => c.db(penv.MONGO_DB!).collection<Person>('people').insertMany([
      { _id: target, ...pi(target), transactions: [{ id: 't-1', amountMinor: 500, memo: `gift for ${pi(target).name}` }], erasedBy: [], erasures: 0 },
      { _id: bystander, ...pi(bystander), erasedBy: [], erasures: 0 },
    ]));
  }
  const app = await h.retention(env);
  for (const penv of Object.values(envs)) {
    const p = h.track(await buildParticipantApp(loadConfig(ParticipantConfigSchema, penv) as never)) as unknown as { ready(): Promise<unknown> };
    await p.ready();
  }
  const databases = [env.MONGO_DB!, envs.identity.MONGO_DB!, envs.incident.MONGO_DB!];
  const needles = (id: string) => Object.values(pi(id));
  // The scan finds PI where it is: before the erasure, the subject's PI is in both participants.
  expect(new Set((await scanForPi(databases, needles(target))).map((x) => x.db))).toEqual(new Set([envs.identity.MONGO_DB, envs.incident.MONGO_DB]));

  const res = await app.inject({ method: 'POST', url: `/v1/retention/subjects/${target}/erasure-requests`, headers: h.auth(target), payload: { scope: { kind: 'account' }, ground: '4.1' } });
  expect(res.statusCode).toBe(201);
  const requestId = res.json().requestId as string;
  await waitFor(async () => (await app.store.requests.findById(requestId).lean())?.status === 'completed', { what: 'the erasure to complete', timeoutMs: 30_000 });

  const isolated = (collection: string, doc: Record<string, unknown>) => collection === 'isolated_records' && doc.isolated === true;
  expect(await scanForPi(databases, needles(target), isolated)).toEqual([]);
  // What the law keeps is there, isolated, with its basis and purge date.
  for (const penv of Object.values(envs)) {
    const kept = await withMongo((c) => c.db(penv.MONGO_DB!).collection('isolated_records').find({ subjectId: target }).toArray());
    expect(kept).toEqual([expect.objectContaining({ category: 'transaction-record', legalBasis: 'legal-obligation', isolated: true, purgeAt: expect.any(Date) })]);
  }
  // Nobody else's data was touched.
  expect((await scanForPi(databases, needles(bystander))).length).toBe(2 * 4);
});
