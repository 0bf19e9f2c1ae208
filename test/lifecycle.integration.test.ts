// The main job end to end: the lifecycle `make demo` drives, run here against the whole platform as
// real processes (RunningSystem) on the real Kafka broker and FerretDB, with a real SMTP server and
// real webhook receivers. Every step of the lifecycle must pass; a failing step names its clause.
// Afterwards every service's database is searched for the erased subject's PI.
import { formatStep, runLifecycle, SmsInbox, startMailReceiver, startWebhookReceiver, type MailReceiver, type StepResult, type WebhookReceiver } from '@pipp/demo';
import { SERVICES } from '@pipp/contracts';
import { dropDatabase, RunningSystem, scanForPi } from '@pipp/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';

const DPO = { id: `stf_${'d0'.repeat(16)}`, phone: '+8613800000001', password: 'dpo-lifecycle-test-harbour-lantern-42' };

let system: RunningSystem;
let mail: MailReceiver;
let webhooks: WebhookReceiver;
let sms: SmsInbox;

beforeAll(async () => {
  mail = await startMailReceiver();
  webhooks = await startWebhookReceiver();
  system = await RunningSystem.start({
    env: {
      IDENTITY_BOOTSTRAP_STAFF: JSON.stringify([{ id: DPO.id, phone: DPO.phone, role: 'dpo', displayName: 'Test DPO', password: DPO.password }]),
      // As `make dev` sets it: retention escalates overdue erasures to this DPO.
      DPO_ACCOUNT_IDS: DPO.id,
      WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
      WEBHOOK_ALLOW_LOOPBACK: 'true',
      SMTP_URL: mail.url,
      // This test shares 2 cores with the rest of the suite (argon2id hashing, FerretDB): the gateway's
      // 5 s production bound on an upstream answer would turn a slow moment into a 504.
      UPSTREAM_TIMEOUT_MS: '30000',
    },
  });
  sms = await SmsInbox.open(process.env.MONGO_URL!, system.database('identity'));
}, 240_000);

afterAll(async () => {
  await system?.stop();
  await Promise.all([mail?.close(), webhooks?.close(), sms?.close()]);
  if (system) await Promise.all(SERVICES.map((s) => dropDatabase(system.database(s))));
});

it('runs the whole lifecycle through the gateway: every step passes, and the erased subject\'s PI is in no database', async () => {
  const { steps, erased, bystander } = await runLifecycle({
    gatewayUrl: system.url('gateway'), sms, mail, webhooks, dpo: DPO, subjects: 12, settleTimeoutMs: 90_000,
  });
  const report = steps.map(formatStep).join('\n');
  console.info(report);
  expect(steps.filter((r) => r.status !== 'ok').map(formatStep), report).toEqual([]);
  expect(steps.length).toBeGreaterThanOrEqual(15);

  // Every service's database read directly (policy 4.1, 4.2): none of the erased subject's phone
  // number, e-mail, nickname or ID number is left, in any collection, outside what the law keeps.
  const databases = SERVICES.map((s) => system.database(s));
  expect(await scanForPi(databases, erased.pi)).toEqual([]);
  // The same search finds a subject who was not erased, in identity and incident at least.
  const kept = new Set((await scanForPi(databases, bystander.pi)).map((h) => h.db));
  expect(kept).toContain(system.database('identity'));
  expect(kept).toContain(system.database('incident'));
}, 600_000);
