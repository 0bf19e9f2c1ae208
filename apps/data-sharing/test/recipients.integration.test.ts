// Recipients (policy 3.1, 1.2, 5.3) and anonymized releases (policy 3.4 last paragraph) on the real
// database; webhook targets that could reach internal addresses are refused.
import { TestAuthority, uniqueId } from '@pipp/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Databases, bearer, dsEnv, startDs, type DsApp } from './helpers.js';

let authority: TestAuthority;
let app: DsApp;
const dbs = new Databases();

beforeAll(async () => {
  authority = await TestAuthority.start();
  app = await startDs(authority, dbs.add(dsEnv(authority, { WEBHOOK_ALLOWED_HOSTS: 'hooks.partner.example,127.0.0.1,10.1.2.3,169.254.169.254', WEBHOOK_ALLOW_LOOPBACK: 'false', ANONYMIZATION_K: '3' })));
});
afterAll(async () => {
  await app?.close();
  await authority.close();
  await dbs.dropAll();
});

const op = () => bearer(authority, 'op-1', 'operator');
const base = {
  legalName: 'Partner Co.', country: 'US', contact: { department: 'Legal', email: 'legal@partner.example', address: '1 Main St' },
  purposes: ['sharing', 'analytics'], categories: ['profile'], ownPolicy: { applies: true, url: 'https://partner.example/privacy' },
  attestation: { protectsNoLessThanPolicy: true, documentRef: 'DPA-1', attestedBy: 'General counsel' }, webhookUrl: 'https://hooks.partner.example/pipp',
};
const create = (payload: Record<string, unknown>, headers: Record<string, string> = op()) => app.inject({ method: 'POST', url: '/v1/data-sharing/admin/recipients', headers, payload });

describe('recipients', () => {
  it('registers a recipient with every fact the subject must know, returns the webhook secret once, and publishes the register', async () => {
    const res = await create(base);
    expect(res.statusCode, res.body).toBe(201);
    const { recipient, webhookSecret } = res.json();
    expect(webhookSecret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(recipient).toMatchObject({ legalName: 'Partner Co.', country: 'US', crossBorder: true, ownPolicy: { applies: true }, attestation: { protectsNoLessThanPolicy: true, documentRef: 'DPA-1', recordedBy: { role: 'operator', actorId: 'op-1' } }, status: 'active' });
    // The secret is stored sealed, never in clear, and not shown again.
    const raw = await app.mongo.connection.collection('recipients').findOne({ _id: recipient.id });
    expect(JSON.stringify(raw)).not.toContain(webhookSecret);
    expect((await app.inject({ url: `/v1/data-sharing/admin/recipients/${recipient.id}`, headers: op() })).body).not.toContain(webhookSecret);
    const pub = await app.inject({ url: '/v1/data-sharing/public/recipients' });
    expect(pub.statusCode).toBe(200);
    expect(pub.json().recipients).toContainEqual(expect.objectContaining({ id: recipient.id, legalName: 'Partner Co.', crossBorder: true, purposes: ['sharing', 'analytics'] }));
    expect(pub.body).not.toContain('webhook');
    // Rotation: a new secret, the previous one kept for acknowledgments in flight.
    const rotated = await app.inject({ method: 'POST', url: `/v1/data-sharing/admin/recipients/${recipient.id}/secret-rotations`, headers: op() });
    expect(rotated.statusCode).toBe(201);
    expect(rotated.json().webhookSecret).not.toBe(webhookSecret);
    expect(rotated.json().recipient.secretIds).toHaveLength(2);
  });

  it('refuses a recipient without the attestation of protection no less than this policy', async () => {
    const res = await create({ ...base, attestation: undefined });
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({ code: 'PIPP_RECIPIENT_INCOMPLETE', clause: '3.1' });
    const no = await create({ ...base, attestation: { ...base.attestation, protectsNoLessThanPolicy: false } });
    expect(no.statusCode).toBe(422);
  });

  it('refuses a recipient in no country, or with a name that shows nothing or hides characters', async () => {
    // A breaker helper registered "   ", "\u200b" and a right-to-left override as legal names, in country ZZ.
    const cases: [Record<string, unknown>, string][] = [
      [{ country: 'ZZ' }, '/body/country'], [{ legalName: '   ' }, '/body/legalName'], [{ legalName: '\u200b' }, '/body/legalName'],
      [{ legalName: 'Acme \u202eLtd' }, '/body/legalName'], [{ legalName: 'Acme\u0000' }, '/body/legalName'],
      [{ legalName: '\u3164' }, '/body/legalName'], [{ contact: { ...base.contact, department: '\u200b' } }, '/body/contact/department'],
    ];
    for (const [change, path] of cases) {
      const res = await create({ ...base, ...change });
      expect(res.json(), JSON.stringify(change)).toMatchObject({ statusCode: 400, code: 'PIPP_VALIDATION', details: [expect.objectContaining({ path })] });
    }
    expect((await create({ ...base, legalName: '北京某某科技有限公司 🚀', country: 'HK' })).statusCode).toBe(201);
  });

  it('refuses webhook URLs that are not https on an allowed host, or that point at internal addresses', async () => {
    for (const url of ['https://evil.example/x', 'http://hooks.partner.example/x', 'https://10.1.2.3/x', 'https://169.254.169.254/latest/meta-data', 'http://127.0.0.1:8080/x', 'https://user:pw@hooks.partner.example/x']) {
      const res = await create({ ...base, webhookUrl: url });
      expect(res.statusCode, url).toBe(422);
      expect(res.json(), url).toMatchObject({ code: 'PIPP_WEBHOOK_URL_REFUSED', details: [{ path: '/body/webhookUrl' }] });
    }
  });

  it('is for operators and the DPO only', async () => {
    expect((await create(base, bearer(authority, 'u1', 'subject'))).statusCode).toBe(403);
    expect((await create(base, bearer(authority, 'identity', 'service'))).statusCode).toBe(403);
    expect((await create(base, {})).statusCode).toBe(401);
    expect((await create(base, bearer(authority, 'dpo-1', 'dpo'))).statusCode).toBe(201);
  });
});

describe('anonymized releases (3.4)', () => {
  const attributes = { quasiIdentifiers: ['ageBand', 'city'], sensitive: ['diagnosis'], insensitive: ['visits'] };
  const rows = (extra: Record<string, unknown>[] = []) => [
    ...Array.from({ length: 3 }, (_, i) => ({ ageBand: '30-39', city: 'Beijing', diagnosis: ['flu', 'cold', 'flu'][i], visits: i })),
    ...Array.from({ length: 4 }, (_, i) => ({ ageBand: '40-49', city: 'Shanghai', diagnosis: ['flu', 'asthma', 'flu', 'cold'][i], visits: i })),
    ...extra,
  ];
  const svc = () => bearer(authority, 'analytics', 'service');

  it('releases a dataset that passes the check without consent, recording its digest and report but no rows', async () => {
    const rid = (await create({ ...base, country: 'CN' })).json().recipient.id;
    const res = await app.inject({ method: 'POST', url: '/v1/data-sharing/releases', headers: svc(), payload: { recipientId: rid, purpose: 'analytics', name: 'Visits by age band', attributes, rows: rows() } });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({ outcome: 'anonymized', rows: 7, subjects: 0, basis: null, report: { passed: true, k: 3, achievedK: 3, smallestClass: { size: 3, classes: 1 } }, digest: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const raw = await app.mongo.connection.collection('releases').findOne({ _id: res.json().id });
    expect(JSON.stringify(raw)).not.toContain('Shanghai');
  });

  it('treats a dataset that fails the check as PI: refused without consent, naming the smallest class and the reasons', async () => {
    const rid = (await create({ ...base, country: 'CN' })).json().recipient.id;
    const lonely = rows([{ ageBand: '90-99', city: 'Lhasa', diagnosis: 'rare', visits: 1 }]);
    const check = await app.inject({ method: 'POST', url: '/v1/data-sharing/releases/checks', headers: svc(), payload: { attributes, rows: lonely } });
    expect(check.json()).toMatchObject({ passed: false, achievedK: 1, smallestClass: { size: 1, classes: 1 }, rowsInClassesBelowK: 1 });
    // Column names are bounded (64 characters), as the schema says: a record's key bound was not enforced.
    const longKey = await app.inject({ method: 'POST', url: '/v1/data-sharing/releases/checks', headers: svc(), payload: { attributes, rows: rows().map((r) => ({ ...r, ['k'.repeat(5000)]: 1 })) } });
    expect(longKey.json()).toMatchObject({ statusCode: 400, code: 'PIPP_VALIDATION' });
    const res = await app.inject({ method: 'POST', url: '/v1/data-sharing/releases', headers: svc(), payload: { recipientId: rid, purpose: 'analytics', name: 'x', attributes, rows: lonely } });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ code: 'PIPP_NOT_ANONYMOUS', clause: '3.4-anonymized', message: expect.stringMatching(/smallest equivalence class 1/) });
    const withPhone = await app.inject({ method: 'POST', url: '/v1/data-sharing/releases', headers: svc(), payload: { recipientId: rid, purpose: 'analytics', name: 'x', attributes: { ...attributes, insensitive: ['visits', 'note'] }, rows: rows().map((r, i) => ({ ...r, note: i === 2 ? 'call 13812345678' : '' })) } });
    expect(withPhone.statusCode).toBe(403);
    expect(withPhone.json().details).toContainEqual({ path: '/body/rows', message: expect.stringMatching(/note holds direct identifiers \(phone/) });
    expect(await app.models.releases.countDocuments({ recipientId: rid })).toBe(0);
  });

  it('releases a failing dataset as PI only with an admissible basis that the consent service confirms (fails closed without it)', async () => {
    const rid = (await create({ ...base, country: 'CN', categories: ['profile', 'health'] })).json().recipient.id;
    const s1 = uniqueId('subj');
    const s2 = uniqueId('subj');
    const data = [{ subject: s1, ageBand: '30-39', diagnosis: 'flu' }, { subject: s2, ageBand: '40-49', diagnosis: 'cold' }];
    const payload = { recipientId: rid, purpose: 'sharing', name: 'Case files', attributes: { quasiIdentifiers: ['ageBand'], sensitive: ['diagnosis'], identifying: ['subject'] }, rows: data };
    const res = await app.inject({ method: 'POST', url: '/v1/data-sharing/releases', headers: op(), payload: { ...payload, personal: { subjectColumn: 'subject', categories: ['health'], basis: { legalBasis: 'contract-necessity', evidenceRef: 'x' } } } });
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({ code: 'PIPP_BASIS_INADMISSIBLE', clause: '3.4' });
    // Every subject's sharing is decided by the consent service, unreachable here: 503, nothing recorded.
    const unreachable = await app.inject({ method: 'POST', url: '/v1/data-sharing/releases', headers: op(), payload: { ...payload, personal: { subjectColumn: 'subject', categories: ['health'], basis: { legalBasis: 'law-enforcement', evidenceRef: 'Order 9' } } } });
    expect(unreachable.statusCode).toBe(503);
    expect(await app.models.shares.countDocuments({ subjectId: { $in: [s1, s2] } })).toBe(0);
  });
});
