// The main job end to end: the lifecycle `make demo` drives, run here against the whole platform as
// real processes (RunningSystem) on the real Kafka broker and FerretDB, with a real SMTP server and
// real webhook receivers. Every step of the lifecycle must pass; a failing step names its clause.
import { formatStep, runLifecycle, SmsInbox, startMailReceiver, startWebhookReceiver, type MailReceiver, type StepResult, type WebhookReceiver } from '@pipp/demo';
import { SERVICES } from '@pipp/contracts';
import { dropDatabase, RunningSystem } from '@pipp/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';

const DPO = { phone: '+8613800000001', password: 'dpo-lifecycle-test-harbour-lantern-42' };

let system: RunningSystem;
let mail: MailReceiver;
let webhooks: WebhookReceiver;
let sms: SmsInbox;

beforeAll(async () => {
  mail = await startMailReceiver();
  webhooks = await startWebhookReceiver();
  system = await RunningSystem.start({
    env: {
      IDENTITY_BOOTSTRAP_STAFF: JSON.stringify([{ phone: DPO.phone, role: 'dpo', displayName: 'Test DPO', password: DPO.password }]),
      WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
      WEBHOOK_ALLOW_LOOPBACK: 'true',
      SMTP_URL: mail.url,
    },
  });
  sms = await SmsInbox.open(process.env.MONGO_URL!, system.database('identity'));
}, 240_000);

afterAll(async () => {
  await system?.stop();
  await Promise.all([mail?.close(), webhooks?.close(), sms?.close()]);
  if (system) await Promise.all(SERVICES.map((s) => dropDatabase(system.database(s))));
});

it('runs the whole lifecycle through the gateway: every step passes', async () => {
  const results: StepResult[] = await runLifecycle({
    gatewayUrl: system.url('gateway'), sms, mail, webhooks, dpo: DPO, subjects: 12, settleTimeoutMs: 90_000,
  });
  const report = results.map(formatStep).join('\n');
  console.info(report);
  expect(results.filter((r) => r.status !== 'ok').map(formatStep), report).toEqual([]);
  expect(results.length).toBeGreaterThanOrEqual(15);
}, 600_000);
