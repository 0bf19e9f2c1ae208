// The whole lifecycle of the platform on the real policy, driven through the gateway only, as the
// people who use it would: data subjects on their phones, an operator and the DPO. Each step checks
// what the policy promises and reports one line with the clause it demonstrates. `make demo` runs it
// against `make dev`; test/lifecycle.integration.test.ts runs it against a RunningSystem.
import { randomBytes } from 'node:crypto';
import { Api, DemoFailure, describe, errorCode } from './client.js';
import { randomMobile, typedForm } from './phones.js';
import type { MailReceiver, WebhookReceiver } from './receivers.js';
import type { SmsInbox } from './sms.js';

/** One step's outcome. `ms`: how long it took. */
export interface StepResult { n: number; title: string; clause: string; status: 'ok' | 'failed' | 'skipped'; detail: string; ms: number }

/**
 * What a run did: every step's result, and the subject whose account was erased at the end with the
 * PI the platform held about them (phone in E.164 and national form, e-mail, nickname, the ID number
 * collected from a third party), for a test to look for in every database afterwards; and a subject
 * still registered, whose PI must still be found (so that the search is known to look in the right places).
 */
export interface LifecycleReport { steps: StepResult[]; erased: SubjectPi; bystander: SubjectPi }

/** A subject and PI values the platform holds (or held) about them. */
export interface SubjectPi { subjectId: string; pi: string[] }

export interface LifecycleOptions {
  /** Base URL of the gateway, e.g. http://127.0.0.1:4000 */
  gatewayUrl: string;
  /** Where the subjects' one-time codes arrive (identity's local SMS sink). */
  sms: SmsInbox;
  /** The SMTP server incident mails to (its SMTP_URL). */
  mail: MailReceiver;
  /** Receives the recipients' webhooks (data-sharing must allow its loopback host). */
  webhooks: WebhookReceiver;
  /** The data-protection officer's staff account (identity's IDENTITY_BOOTSTRAP_STAFF). */
  dpo: { phone: string; password: string };
  /** Synthetic data subjects to register (default 24, at least 10: the steps use disjoint groups). */
  subjects?: number;
  /** Called with each step's result as soon as it is known. */
  onStep?: (result: StepResult) => void;
  /** How long to wait for asynchronous effects (events, the saga), ms (default 120 000). */
  settleTimeoutMs?: number;
}

interface Subject {
  i: number;
  phone: string;
  password: string;
  deviceId: string;
  email: string;
  anon: Api;
  api: Api;
  id: string;
}

interface Tokens { accessToken: string; subjectId: string }
type Body = Record<string, unknown>;

/** A synthetic resident ID number (valid check digit) collected about the first subject from a partner. */
const ID_NUMBER = '11010519491231002X';

const PASSWORD_WORDS = ['harbour', 'lantern', 'violet', 'orchard', 'granite', 'meadow', 'copper', 'thistle', 'saffron', 'juniper'];

/** The loopback address actor `k` connects from (127.0.10.1, 127.0.10.2, …): one client IP each. */
const addressOf = (k: number) => `127.0.${10 + Math.floor(k / 250)}.${1 + (k % 250)}`;

/** Runs `fn` over `items` with at most `limit` at a time. */
async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    for (let k = next++; k < items.length; k = next++) out[k] = await fn(items[k]!);
  }));
  return out;
}

function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new DemoFailure(message);
}

/**
 * Runs the lifecycle; resolves with every step's result (a failed step skips the rest, which depend
 * on it). Never rejects for a platform failure: that is a failed step.
 */
export async function runLifecycle(opts: LifecycleOptions): Promise<LifecycleReport> {
  const settle = opts.settleTimeoutMs ?? 120_000;
  const count = Math.max(10, opts.subjects ?? 24);
  const run = randomBytes(3).toString('hex');
  const clients: Api[] = [];
  const client = (k: number) => { const c = Api.from(opts.gatewayUrl, addressOf(k)); clients.push(c); return c; };
  const visitor = client(0);
  const dpoClient = client(1);
  const operatorClient = client(2);
  const subjects: Subject[] = Array.from({ length: count }, (_, i) => ({
    i,
    phone: randomMobile(),
    password: `${PASSWORD_WORDS[i % 10]}-${PASSWORD_WORDS[(i + 3) % 10]}-${randomBytes(4).toString('hex')}-quietly`,
    deviceId: `demo-device-${run}-${i}`,
    email: `subject-${run}-${i}@mail.pipp.test`,
    anon: client(10 + i),
    api: undefined as unknown as Api,
    id: '',
  }));
  const granters = subjects.filter((s) => s.i % 2 === 0);
  const refusers = subjects.filter((s) => s.i % 2 === 1);
  const [alice, bob] = [subjects[0]!, subjects[1]!];
  let dpo!: Api;
  let operator!: Api;
  let policyVersion = 0;
  let policyText = '';
  let domestic!: { id: string };
  let foreign!: { id: string };

  /** Polls `probe` until it returns a value (not undefined), or fails with `what`. */
  async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = settle): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      try {
        const v = await probe();
        if (v !== undefined) return v;
      } catch (err) { last = err; }
      if (Date.now() > deadline) throw new DemoFailure(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${last instanceof Error ? ` (${last.message})` : ''}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Signs in (phone + password), completing a risk challenge with the code sent by SMS. */
  async function signIn(api: Api, path: '/v1/identity/public/sign-in' | '/v1/identity/public/staff/sign-in', phone: string, password: string, deviceId?: string): Promise<Tokens> {
    const after = new Date(Date.now() - 1);
    const res = await api.send<Body>('POST', path, { phone, password, ...(deviceId ? { deviceId } : {}) });
    if (res.status === 200) return res.body as unknown as Tokens;
    check(res.status === 202, `sign-in: expected 200 or 202, got ${res.status} ${describe(res.body)}`);
    const code = await opts.sms.code(phone, after);
    return api.expect<Tokens>(200, 'POST', '/v1/identity/public/sign-in/verify', { challengeId: res.body.challengeId, code });
  }

  async function requestCode(api: Api, phone: string, typed: string, purpose: 'register' | 'sign-in'): Promise<string> {
    const after = new Date(Date.now() - 1);
    await api.expect(202, 'POST', '/v1/identity/public/codes', { phone: typed, purpose });
    return opts.sms.code(phone, after);
  }

  const steps: { title: string; clause: string; run: () => Promise<string> }[] = [
    {
      title: 'a visitor reads the privacy policy without an account',
      clause: 'preamble, 2.4.1(1)i',
      run: async () => {
        const doc = await visitor.expect<Body>(200, 'GET', '/v1/consent/public/policies/general');
        policyVersion = doc.version as number;
        policyText = doc.text as string;
        const clauses = (doc.clauses as unknown[] | undefined)?.length ?? 0;
        check(policyVersion >= 1 && clauses > 30, `the general policy should have addressable clauses, got version ${policyVersion} with ${clauses}`);
        const clause = await visitor.expect<{ clause: { text: string } }>(200, 'GET', `/v1/consent/public/policies/general/versions/${policyVersion}/clauses/4.2.3`);
        check(/agreement/i.test(clause.clause.text), 'clause 4.2.3 should be served by its id');
        const denied = await visitor.send('GET', `/v1/identity/subjects/${'sub_x'}/profile`);
        check(denied.status === 401, `an anonymous visitor must not reach account data, got ${denied.status}`);
        return `general policy version ${policyVersion}, ${clauses} clauses addressable by id (4.2.3 served); account data needs sign-in`;
      },
    },
    {
      title: 'the DPO signs in and creates an operator account; the operator signs in',
      clause: '5.4.1',
      run: async () => {
        dpo = dpoClient.as((await signIn(dpoClient, '/v1/identity/public/staff/sign-in', opts.dpo.phone, opts.dpo.password)).accessToken);
        const phone = randomMobile();
        const password = `operator-${randomBytes(9).toString('base64url')}-shift-lantern`;
        await dpo.expect(201, 'POST', '/v1/identity/admin/staff', { phone, role: 'operator', displayName: `Demo operator ${run}`, password });
        operator = operatorClient.as((await signIn(operatorClient, '/v1/identity/public/staff/sign-in', phone, password)).accessToken);
        const forbidden = await operator.send('POST', '/v1/identity/admin/staff', { phone: randomMobile(), role: 'dpo', displayName: 'x', password });
        check(forbidden.status === 403, `an operator must not create staff, got ${forbidden.status}`);
        return 'staff accounts by role; an operator cannot create staff (403)';
      },
    },
    {
      title: `${count} data subjects register with verified mainland mobile numbers`,
      clause: '2.4.1(1)i',
      run: async () => {
        await pool(subjects, 4, async (s) => {
          const typed = typedForm(s.phone, s.i);
          const code = await requestCode(s.anon, s.phone, typed, 'register');
          const tokens = await s.anon.expect<Tokens>(201, 'POST', '/v1/identity/public/registrations', {
            phone: typed, code, password: s.password, deviceId: s.deviceId, nickname: `Demo ${run} ${s.i}`,
            policyAcknowledged: { documentId: 'general', version: policyVersion },
          });
          s.id = tokens.subjectId;
          s.api = s.anon.as(tokens.accessToken);
        });
        const bad = await visitor.send('POST', '/v1/identity/public/codes', { phone: '+86 12345', purpose: 'register' });
        check(bad.status === 400, `a malformed number must be refused, got ${bad.status}`);
        return `${count} accounts from numbers typed 5 ways (+86…, 0086…, spaced, dashed, full-width), each proven by a one-time SMS code; a malformed number gets 400`;
      },
    },
    {
      title: 'each subject signs in with the number in E.164 and their password; a wrong password and an unknown number look the same',
      clause: '2.4.1(1)i, 5.4.1',
      run: async () => {
        await pool(subjects, 4, async (s) => {
          const tokens = await signIn(s.anon, '/v1/identity/public/sign-in', s.phone, s.password, s.deviceId);
          check(tokens.subjectId === s.id, 'the number in any typed form must be the same account');
          s.api = s.anon.as(tokens.accessToken);
        });
        const wrong = await bob.anon.send('POST', '/v1/identity/public/sign-in', { phone: bob.phone, password: 'not-my-password-at-all' });
        const unknown = await bob.anon.send('POST', '/v1/identity/public/sign-in', { phone: randomMobile(), password: 'not-my-password-at-all' });
        check(wrong.status === 401 && unknown.status === 401 && describe(wrong.body) === describe(unknown.body), `failures must not reveal whether a number is registered (${wrong.status} vs ${unknown.status})`);
        return `${count} sessions, each on the account registered from another written form of the number; wrong password and unknown number both answer 401 ${(wrong.body as Body).code as string}`;
      },
    },
    {
      title: 'subjects add an e-mail address to their profile (optional information)',
      clause: '2.4.1(1)ii, 4.1',
      run: async () => {
        await pool(subjects, 4, (s) => s.api.expect(200, 'PATCH', `/v1/identity/subjects/${s.id}/profile`, { email: s.email }));
        const other = await bob.api.send('GET', `/v1/identity/subjects/${alice.id}/profile`);
        check(other.status === 403, `one subject must never read another's profile, got ${other.status}`);
        const mine = await alice.api.expect<Body>(200, 'GET', `/v1/identity/subjects/${alice.id}/profile`);
        check(JSON.stringify(mine).includes(alice.email), 'the profile should show the e-mail address');
        return `${count} profiles with e-mail (a channel for notices); a subject reads only their own (403 otherwise)`;
      },
    },
    {
      title: 'half the subjects grant personalization, half refuse it; basic functions work for all',
      clause: '2.1.1, 2.1.2',
      run: async () => {
        await pool(subjects, 4, (s) => s.api.expect(201, 'POST', `/v1/consent/subjects/${s.id}/consents`, {
          channel: 'app', changes: [{ purpose: 'personalization', state: s.i % 2 === 0 ? 'granted' : 'withdrawn' }],
        }));
        const view = await bob.api.expect<{ functions: { functionId: string; kind: string; available: boolean; reason: string }[] }>(200, 'GET', `/v1/consent/subjects/${bob.id}/consents`);
        const basic = view.functions.filter((f) => f.kind === 'basic');
        check(basic.length > 0 && basic.every((f) => f.available), `refusing an additional function must leave every basic one available: ${JSON.stringify(basic.filter((f) => !f.available))}`);
        const personalization = view.functions.find((f) => f.functionId === 'personalization');
        check(personalization && !personalization.available, 'personalization must be unavailable to a subject who refused it');
        return `${granters.length} granted, ${refusers.length} refused (each with a consent receipt); for those who refused, ${basic.length} basic functions stay available and personalization says why not`;
      },
    },
    {
      title: 'activity is recorded for personalization only with consent, and deleted when it is withdrawn',
      clause: '2.4.1(2)',
      run: async () => {
        const body = { kind: 'browse', target: '/catalogue/green-tea' };
        await pool(granters, 4, (s) => until('activity to be accepted after consent', async () => ((await s.api.send('POST', `/v1/identity/subjects/${s.id}/activity`, body)).status === 201 ? true : undefined)));
        const refused = await pool(refusers, 4, (s) => s.api.send('POST', `/v1/identity/subjects/${s.id}/activity`, body));
        check(refused.every((r) => r.status === 403), `activity without consent must be refused: ${refused.map((r) => r.status).join(',')}`);
        // Withdrawing the consent deletes what was recorded under it.
        const w = granters.at(-1)!;
        const log = await w.api.expect<{ entries: unknown[] }>(200, 'GET', `/v1/identity/subjects/${w.id}/activity`);
        check(log.entries.length > 0, 'the subject should see their activity log');
        await w.api.expect(201, 'POST', `/v1/consent/subjects/${w.id}/consents`, { channel: 'app', changes: [{ purpose: 'personalization', state: 'withdrawn' }] });
        await until('the activity log to be deleted after the withdrawal', async () => ((await w.api.expect<{ entries: unknown[] }>(200, 'GET', `/v1/identity/subjects/${w.id}/activity`)).entries.length === 0 ? true : undefined));
        await w.api.expect(201, 'POST', `/v1/consent/subjects/${w.id}/consents`, { channel: 'app', changes: [{ purpose: 'personalization', state: 'granted' }] });
        return `${granters.length} activity records with consent; ${refusers.length} refused 403 ${errorCode(refused[0]!.body)}; a withdrawal deleted that subject's log`;
      },
    },
    {
      title: 'sharing with a domestic recipient: refused without separate consent, allowed with it',
      clause: '3.1.2, 1.2',
      run: async () => {
        const recipient = (name: string, country: string, path: string) => operator.expect<{ recipient: { id: string } }>(201, 'POST', '/v1/data-sharing/admin/recipients', {
          legalName: name, country, contact: { department: 'Privacy office', email: `privacy-${run}@${path.slice(1)}.example` },
          purposes: ['sharing'], categories: ['profile', 'phone-number', 'transaction-record'], ownPolicy: { applies: true, url: `https://${path.slice(1)}.example/privacy` },
          attestation: { protectsNoLessThanPolicy: true, documentRef: `DPA-${run}`, attestedBy: 'DPO' }, webhookUrl: `${opts.webhooks.url}${path}`,
        });
        domestic = (await recipient(`Hangzhou Express Logistics ${run}`, 'CN', '/domestic')).recipient;
        foreign = (await recipient(`Lion City Analytics ${run}`, 'SG', '/foreign')).recipient;
        const share = { recipientId: domestic.id, categories: ['profile', 'phone-number'] };
        const refused = await alice.api.send<Body>('POST', `/v1/data-sharing/subjects/${alice.id}/shares`, share);
        check(refused.status === 403 && refused.body.clause === '3.1.2', `sharing without consent must be refused under 3.1.2, got ${refused.status} ${describe(refused.body)}`);
        await alice.api.expect(201, 'POST', `/v1/consent/subjects/${alice.id}/consents`, { channel: 'app', changes: [{ purpose: 'sharing', scope: { recipientId: domestic.id }, state: 'granted' }] });
        const ok = await until('the share to be allowed after consent', async () => {
          const r = await alice.api.send<Body>('POST', `/v1/data-sharing/subjects/${alice.id}/shares`, share);
          return r.status === 201 ? r.body : undefined;
        });
        const who = await alice.api.expect<{ recipients: { recipientId: string; ownPolicy: unknown }[] }>(200, 'GET', `/v1/data-sharing/subjects/${alice.id}/recipients`);
        check(who.recipients.some((r) => r.recipientId === domestic.id), '"who has my data" should list the recipient');
        return `refused (${errorCode(refused.body)}); after consent shared on basis ${(ok.basis as Body).kind as string}; "who has my data" lists the recipient and its own policy`;
      },
    },
    {
      title: 'a transfer abroad is refused until the subject authorizes that country',
      clause: '5.3, 5.3.2',
      run: async () => {
        await alice.api.expect(201, 'POST', `/v1/consent/subjects/${alice.id}/consents`, { channel: 'app', changes: [{ purpose: 'sharing', scope: { recipientId: foreign.id }, state: 'granted' }] });
        const share = { recipientId: foreign.id, categories: ['profile'], transfer: { ground: '5.3.2' } };
        const refused = await until('the cross-border refusal', async () => {
          const r = await alice.api.send<Body>('POST', `/v1/data-sharing/subjects/${alice.id}/shares`, share);
          return r.status === 403 && r.body.code === 'PIPP_CROSS_BORDER_REFUSED' ? r.body : undefined;
        });
        await alice.api.expect(201, 'POST', `/v1/consent/subjects/${alice.id}/consents`, { channel: 'app', changes: [{ purpose: 'cross-border', scope: { country: 'SG' }, state: 'granted' }] });
        const ok = await until('the transfer to be allowed after authorization', async () => {
          const r = await alice.api.send<Body>('POST', `/v1/data-sharing/subjects/${alice.id}/shares`, share);
          return r.status === 201 ? r.body : undefined;
        });
        check(ok.crossBorder === true, 'the transfer should be recorded as cross-border');
        return `to SG: refused under ${refused.clause as string} until the subject's separate authorization for SG; then transferred and recorded with ground 5.3.2`;
      },
    },
    {
      title: 'PI collected from a third party: accepted only with its written confirmation; sensitive PI waits for the subject',
      clause: '2.4.2(3), 2.4.2(2)',
      run: async () => {
        const purposeUrl = '/v1/consent/admin/purposes/partner-verification';
        const existing = await visitor.send('GET', '/v1/consent/public/catalogue/purposes/partner-verification');
        if (existing.status === 404) {
          await dpo.expect([200, 201], 'PUT', purposeUrl, {
            title: 'Verification data from partners', kind: 'additional', policyClause: '2.4.2(3)', categories: ['profile', 'id-document'],
            legalBases: ['consent'], why: 'a partner bank verified your identity for us',
          });
        }
        await alice.api.expect(201, 'POST', `/v1/consent/subjects/${alice.id}/consents`, { channel: 'app', changes: [
          { purpose: 'partner-verification', state: 'granted' }, { purpose: 'partner-verification', scope: { category: 'id-document' }, state: 'granted' },
        ] });
        const confirmation = { documentRef: `Partner letter ${run}`, subjectConsented: true, lawfulSource: true, liabilityAccepted: true, signatory: 'Partner DPO', signedAt: new Date().toISOString() };
        const body = { source: { name: 'Partner Bank Ltd.' }, purpose: 'partner-verification', confirmation, items: [{ category: 'profile', data: { nickname: 'Li' } }, { category: 'id-document', data: { idNumber: ID_NUMBER } }] };
        const url = `/v1/data-sharing/subjects/${alice.id}/indirect-collections`;
        const unconfirmed = await operator.for('partner-verification').send<Body>('POST', url, { ...body, confirmation: { ...confirmation, lawfulSource: false } });
        check(unconfirmed.status === 422, `a source that does not confirm it is lawful must be refused with 422, got ${unconfirmed.status} ${describe(unconfirmed.body)}`);
        const created = await until('the collection to be accepted after consent', async () => {
          const r = await operator.for('partner-verification').send<{ id: string; items: { category: string; status: string }[] }>('POST', url, body);
          return r.status === 201 ? r.body : undefined;
        });
        check(created.items.find((x) => x.category === 'id-document')?.status === 'awaiting-confirmation', 'sensitive PI must wait for the subject');
        const blocked = await operator.for('partner-verification').send('GET', `${url}/${created.id}/data?categories=id-document`);
        check(blocked.status === 409, `sensitive PI must be unusable before confirmation, got ${blocked.status}`);
        await alice.api.expect(200, 'POST', `${url}/${created.id}/confirmations`, { confirm: ['id-document'] });
        await operator.for('partner-verification').expect(200, 'GET', `${url}/${created.id}/data?categories=id-document`);
        return 'refused without the source\'s confirmation (422); accepted with it, the subject informed; the ID document unusable (409) until the subject confirmed it';
      },
    },
    {
      title: 'a rights-restricting policy update pauses personalization until express consent',
      clause: 'VI',
      run: async () => {
        const published = await dpo.expect<Body>(201, 'POST', '/v1/consent/admin/policies/general/versions', {
          title: 'Personal information protection policy', text: policyText, restrictsRights: true, affectedPurposes: ['personalization'],
          summary: 'Activity logs are kept for two years instead of one', changes: ['2.4.1(2): activity logs kept for two years'],
        });
        const version = published.version as number;
        const [s1, s2] = [granters[1]!, granters[2]!];
        const body = { kind: 'search', query: 'oolong' };
        const paused = await until('personalization to pause under clause VI', async () => {
          const r = await s1.api.send<Body>('POST', `/v1/identity/subjects/${s1.id}/activity`, body);
          return r.status === 403 && r.body.clause === 'VI' ? r.body : undefined;
        });
        await s1.api.expect(201, 'POST', `/v1/consent/subjects/${s1.id}/policy-acceptances`, { documentId: 'general', version, channel: 'app' });
        await until('personalization to resume after express consent', async () => ((await s1.api.send('POST', `/v1/identity/subjects/${s1.id}/activity`, body)).status === 201 ? true : undefined));
        const still = await s2.api.send('POST', `/v1/identity/subjects/${s2.id}/activity`, body);
        check(still.status === 403, `a subject who has not consented to version ${version} must stay paused, got ${still.status}`);
        const again = await signIn(s2.anon, '/v1/identity/public/sign-in', s2.phone, s2.password, s2.deviceId);
        check(again.subjectId === s2.id, 'basic functions must continue under the update');
        return `version ${version} published: personalization paused (${errorCode(paused)}); resumed for the subject who consented expressly, still paused for one who did not; sign-in unaffected`;
      },
    },
    {
      title: 'a subject reports a leaked account: sessions end and support gets the report',
      clause: '5.4.1',
      run: async () => {
        const s = refusers[0]!;
        const res = await s.api.expect<{ reportId: string; sessionsRevoked: number; passwordResetRequired: boolean }>(201, 'POST', `/v1/identity/subjects/${s.id}/leak-reports`, { description: 'Someone signed in to my account from a device I do not own' });
        await until('the old token to stop working', async () => ((await s.api.send('GET', `/v1/identity/subjects/${s.id}/profile`)).status === 401 ? true : undefined));
        const report = await until('the report to reach support', async () => {
          const r = await operator.for('account').send<{ kind: string }[]>('GET', `/v1/incident/subjects/${s.id}/reports`);
          return r.status === 200 ? r.body.find((x) => x.kind === 'account-leak') : undefined;
        });
        return `${res.sessionsRevoked} session(s) revoked, password reset ${res.passwordResetRequired ? 'required' : 'not required'}, old token refused (401); support queue has the ${report.kind} report`;
      },
    },
    {
      title: 'a security incident is declared and the affected subjects are notified by e-mail; an announcement is published',
      clause: '5.4.2',
      run: async () => {
        const affected = granters.slice(0, 6);
        const situation = `On ${new Date().toISOString().slice(0, 10)} a leaked staff credential was used to read order records (demo ${run}).`;
        const incident = await operator.expect<{ id: string }>(201, 'POST', '/v1/incident/admin/incidents', {
          title: 'Order database read by an unauthorized party',
          basicSituation: situation,
          categories: ['phone-number', 'contact-channel'],
          possibleImpact: 'Phishing messages quoting your recent orders.',
          measuresTaken: ['Revoked the leaked credential', 'Rotated the database keys'],
          measuresPlanned: ['Hardware security keys for all staff'],
          advice: 'Never share one-time codes; hang up on callers who quote your orders and call us back.',
          remedies: 'One year of free identity monitoring; claims for losses through support.',
          severity: 'medium',
          subjectIds: affected.map((s) => s.id),
        });
        await operator.expect(202, 'POST', `/v1/incident/admin/incidents/${incident.id}/notifications`, {});
        const mails = await until('every affected subject\'s e-mail', async () => {
          const got = affected.map((s) => opts.mail.mails.find((m) => m.to.includes(s.email) && m.text.includes(situation)));
          return got.every(Boolean) ? got : undefined;
        });
        const elements = ['Phishing messages', 'Revoked the leaked credential', 'Never share one-time codes', 'identity monitoring'];
        check(mails.every((m) => elements.every((e) => m!.text.includes(e))), 'every notice must carry every element 5.4.2 requires');
        const others = opts.mail.mails.filter((m) => refusers.some((s) => m.to.includes(s.email)) && m.text.includes(situation));
        check(others.length === 0, 'subjects not affected must not be notified');
        await operator.expect(201, 'POST', `/v1/incident/admin/incidents/${incident.id}/announcements`, { title: 'Security incident notice' });
        const board = await visitor.expect<unknown>(200, 'GET', '/v1/incident/public/announcements');
        check(JSON.stringify(board).includes(situation), 'the announcement should be public');
        return `${affected.length} subjects mailed through a real SMTP server, each notice with situation, impact, measures, advice and remedies; nobody else; the public announcement is readable without an account`;
      },
    },
    {
      title: 'a function is shut down: collection stops at once and its users are told',
      clause: '2.4.2(5)',
      run: async () => {
        const functionId = `photo-prints-${run}`;
        await dpo.expect([200, 201], 'PUT', `/v1/consent/admin/functions/${functionId}`, {
          title: 'Photo prints', kind: 'additional', purposes: ['personalization'], categories: ['activity-log'], why: 'print the photos you choose',
        });
        const users = granters.slice(3, 5);
        const shutdown = await operator.expect<{ shutdownId: string }>(201, 'POST', '/v1/retention/admin/shutdowns', { functionId, title: 'Photo prints', action: 'erase', categories: ['activity-log'], affectedSubjects: users.map((s) => s.id) });
        const decision = await until('the function to stop', async () => {
          const d = await operator.expect<{ allowed: boolean; clause: string }>(200, 'POST', '/v1/consent/decisions', { subjectId: users[0]!.id, service: 'identity', purpose: 'personalization', categories: ['activity-log'], functionId });
          // Refused because of the shutdown, not for another reason (a policy update awaiting consent, VI,
          // made this step pass before the shutdown had reached consent).
          return d.clause === '2.4.2(5)' ? d : undefined;
        });
        const listed = await visitor.expect<{ items: { functionId: string }[] }>(200, 'GET', '/v1/retention/public/shutdowns');
        check(listed.items.some((x) => x.functionId === functionId), 'the shutdown should be public');
        await until('the users\' shutdown notices', async () => {
          const seen = await Promise.all(users.map(async (s) => JSON.stringify(await operator.for('notifications').expect(200, 'GET', `/v1/incident/subjects/${s.id}/notifications`)).includes('business-shutdown')));
          return seen.every(Boolean) ? true : undefined;
        });
        await until('the function\'s data to be erased through the saga', async () => {
          const r = await operator.expect<{ completedAt?: string }>(200, 'GET', `/v1/retention/admin/shutdowns/${shutdown.shutdownId}`);
          return r.completedAt ? true : undefined;
        });
        return `decisions for the function now refused (clause ${decision.clause}); listed publicly; ${users.length} users notified; its data erased through the saga`;
      },
    },
    {
      title: 'a subject deletes their account: every service and every recipient erases, until complete',
      clause: '4.1, 4.2, 4.2.3',
      run: async () => {
        const created = await alice.api.expect<{ requestId: string; statusKey: string }>(201, 'POST', `/v1/retention/subjects/${alice.id}/erasure-requests`, { scope: { kind: 'account' }, ground: '4.1' });
        const started = Date.now();
        const done = await until('the erasure to complete', async () => {
          const r = await operator.expect<{ status: string; participants: { participant?: string; service?: string; state: string }[]; progress: { completed: number; total: number } }>(200, 'GET', `/v1/retention/admin/erasure-requests/${created.requestId}`);
          check(r.status !== 'failed' && r.status !== 'refused', `the erasure ${r.status}`);
          return r.status === 'completed' ? r : undefined;
        });
        const notices = ['/domestic', '/foreign'].map((p) => opts.webhooks.hits.find((h) => h.path === p && h.body.type === 'pipp.deletion-notice'));
        check(notices.every(Boolean), 'both recipients should have received a deletion notice');
        check(!JSON.stringify(notices).includes(alice.id), 'recipients get a pseudonym, never our subject id');
        const gone = await operator.for('account').send('GET', `/v1/identity/subjects/${alice.id}/profile`);
        check(gone.status === 404, `the account should be gone, got ${gone.status}`);
        const token = await alice.api.send('GET', `/v1/retention/subjects/${alice.id}/erasure-requests/${created.requestId}`);
        check(token.status === 401, `the erased subject's token must stop working, got ${token.status}`);
        // Signed out for good, the subject still follows the request with the key the request gave them.
        const followed = await alice.anon.send<{ status: string }>('GET', `/v1/retention/public/erasure-requests/${created.requestId}`, undefined, { 'x-pipp-status-key': created.statusKey });
        check(followed.status === 200 && followed.body.status === 'completed', `the subject should see the completed request with its status key, got ${followed.status} ${describe(followed.body)}`);
        // A narrower request: only the activity log, on the ground that processing broke the agreement.
        const part = await granters[1]!.api.expect<{ requestId: string; participants: { participant: string }[] }>(201, 'POST', `/v1/retention/subjects/${granters[1]!.id}/erasure-requests`, { scope: { kind: 'categories', categories: ['activity-log'] }, ground: '4.2.3' });
        await until('the activity-log erasure to complete', async () => ((await granters[1]!.api.expect<{ status: string }>(200, 'GET', `/v1/retention/subjects/${granters[1]!.id}/erasure-requests/${part.requestId}`)).status === 'completed' ? true : undefined));
        const left = await granters[1]!.api.expect<{ entries: unknown[] }>(200, 'GET', `/v1/identity/subjects/${granters[1]!.id}/activity`);
        check(left.entries.length === 0, 'the activity log should be erased');
        return `completed in ${((Date.now() - started) / 1000).toFixed(1)} s by ${done.progress.total} participants (${done.participants.map((p) => p.participant ?? p.service).join(', ')}); both recipients sent deletion notices; account gone; token refused, progress still visible with the status key; another subject's activity log erased on ground 4.2.3 by ${part.participants.length} participants`;
      },
    },
  ];

  const results: StepResult[] = [];
  let failed = false;
  try {
    for (const [k, step] of steps.entries()) {
      const t0 = Date.now();
      let result: StepResult;
      if (failed) result = { n: k + 1, title: step.title, clause: step.clause, status: 'skipped', detail: 'an earlier step failed', ms: 0 };
      else {
        try {
          result = { n: k + 1, title: step.title, clause: step.clause, status: 'ok', detail: await step.run(), ms: Date.now() - t0 };
        } catch (err) {
          failed = true;
          result = { n: k + 1, title: step.title, clause: step.clause, status: 'failed', detail: err instanceof Error ? err.message : String(err), ms: Date.now() - t0 };
        }
      }
      results.push(result);
      opts.onStep?.(result);
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
  return {
    steps: results,
    erased: { subjectId: alice.id, pi: [alice.phone, alice.phone.slice(3), alice.email, `Demo ${run} 0`, ID_NUMBER] },
    bystander: { subjectId: bob.id, pi: [bob.phone, bob.email] },
  };
}

/** One readable line for a step: `  ok  12. [5.4.2] title — detail (1.2 s)`. */
export function formatStep(r: StepResult): string {
  const mark = r.status === 'ok' ? '  ok' : r.status === 'failed' ? 'FAIL' : 'skip';
  return `${mark} ${String(r.n).padStart(2)}. [${r.clause}] ${r.title}${r.detail ? ` — ${r.detail}` : ''}${r.status === 'skipped' ? '' : ` (${(r.ms / 1000).toFixed(1)} s)`}`;
}
