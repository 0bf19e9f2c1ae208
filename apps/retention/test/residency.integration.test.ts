// Data residency report (policy 5.3): every service's kit declares where its stores are at start-up;
// retention reports, per service, compliant / excepted / flagged (abroad without a 5.3 exception) /
// undeclared.
import { createEvent } from '@pipp/contracts';
import { produceRaw, waitFor } from '@pipp/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Harness, type RetentionApp } from './helpers.js';

let h: Harness;
let env: Record<string, string>;
let app: RetentionApp;
beforeAll(async () => {
  h = await Harness.start();
  env = h.env();
  app = await h.retention(env);
});
afterAll(() => h?.close());

const declare = (service: 'identity' | 'consent' | 'incident', stores: { store: string; location: string }[], exception?: { clause: '5.3.1' | '5.3.2' | '5.3.3'; reference: string }) =>
  createEvent('privacy.residency.declared', {
    source: service,
    // A declaration that lies about being compliant is judged on its stores, not its flag.
    payload: { service, instanceId: `${service}-1`, homeRegion: 'CN', stores, ...(exception ? { exception } : {}), flagged: false, declaredAt: new Date().toISOString() },
  });

it('reports each service\'s stores and flags what is outside the home region without an exception', async () => {
  await produceRaw(`${env.KAFKA_TOPIC_PREFIX}privacy.residency.declared`, [
    declare('identity', [{ store: 'mongodb', location: 'CN' }, { store: 'kafka', location: 'CN' }]),
    declare('consent', [{ store: 'mongodb', location: 'CN' }, { store: 'backups', location: 'SG' }]),
    declare('incident', [{ store: 'mongodb', location: 'DE' }], { clause: '5.3.3', reference: 'contract EU-77' }),
  ].map((e) => ({ key: e.id, value: JSON.stringify(e) })));
  const report = await waitFor(async () => {
    const r = (await app.inject({ url: '/v1/retention/admin/residency', headers: h.auth('dpo-1', 'dpo') })).json();
    return r.services?.filter((s: { status: string }) => s.status !== 'undeclared').length >= 4 ? r : null;
  }, { what: 'the declarations to be reported' });
  const by = Object.fromEntries(report.services.map((s: { service: string }) => [s.service, s]));
  expect(report.homeRegion).toBe('CN');
  // Retention declared itself at start-up through its own kit.
  expect(by.retention).toMatchObject({ status: 'compliant' });
  expect(by.identity).toMatchObject({ status: 'compliant' });
  expect(by.consent).toMatchObject({ status: 'flagged', summary: 'backups in SG outside the home region CN without a policy 5.3 exception' });
  expect(by.consent.declarations[0].flagged).toBe(true);
  expect(by.incident).toMatchObject({ status: 'excepted', summary: expect.stringMatching(/under policy 5.3.3 \(contract EU-77\)/) });
  expect(by.gateway).toMatchObject({ status: 'undeclared' });
  expect(report.services[0].status).toBe('flagged');
  expect(report.flagged).toBe(3); // consent flagged; gateway and data-sharing undeclared
  expect((await app.inject({ url: '/v1/retention/admin/residency', headers: h.auth('s-1') })).statusCode).toBe(403);
});
