#!/usr/bin/env node
// `make demo`: drives the system `make dev` runs, through its gateway, over the whole lifecycle on the
// real policy. Starts the outside world first: a real SMTP server where incident mails to in
// development (DEV_SMTP_PORT) and webhook receivers for the recipients. Prints one line per step with
// the clause it demonstrates; exits 1 when a step fails, 2 when the system is not there to drive.
//
// Environment (all optional): GATEWAY_URL (default http://127.0.0.1:4000), MONGO_URL (default the dev
// FerretDB) and IDENTITY_MONGO_DB (default pipp_identity) to read the SMS sink, DEMO_SUBJECTS (24).
import { DEV_SERVICE_PORTS, DEV_SMTP_PORT, devSecrets, profileConfig } from '@pipp/infra';
import { formatStep, runLifecycle } from './lifecycle.js';
import { startMailReceiver, startWebhookReceiver } from './receivers.js';
import { SmsInbox } from './sms.js';

const say = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<number> {
  const gatewayUrl = process.env.GATEWAY_URL ?? `http://127.0.0.1:${DEV_SERVICE_PORTS.gateway}`;
  const ready = await fetch(`${gatewayUrl}/readyz`, { signal: AbortSignal.timeout(3000) }).then((r) => r.ok, () => false);
  if (!ready) {
    say(`The system is not running at ${gatewayUrl}: start it with \`make dev\` in another terminal, wait for "all services ready", then run \`make demo\`.`);
    return 2;
  }
  const staff = JSON.parse(devSecrets().IDENTITY_BOOTSTRAP_STAFF!) as { phone: string; password: string; role: string }[];
  const dpo = staff.find((s) => s.role === 'dpo');
  if (!dpo) { say('No DPO account in IDENTITY_BOOTSTRAP_STAFF (.cache/dev/secrets.json).'); return 2; }

  const mail = await startMailReceiver(DEV_SMTP_PORT).catch((err: NodeJS.ErrnoException) => {
    throw new Error(err.code === 'EADDRINUSE' ? `port ${DEV_SMTP_PORT} is taken: stop whatever listens there (another demo?) so that the demo can receive incident's mail` : err.message);
  });
  const webhooks = await startWebhookReceiver();
  const sms = await SmsInbox.open(process.env.MONGO_URL ?? `mongodb://127.0.0.1:${profileConfig('dev').mongoPort}`, process.env.IDENTITY_MONGO_DB ?? 'pipp_identity');
  say(`PIPP demo against ${gatewayUrl} (mail: ${mail.url}, recipients' webhooks: ${webhooks.url})`);
  const t0 = Date.now();
  try {
    const { steps: results } = await runLifecycle({ gatewayUrl, sms, mail, webhooks, dpo, subjects: Number(process.env.DEMO_SUBJECTS ?? 24), onStep: (r) => say(formatStep(r)) });
    const failed = results.filter((r) => r.status !== 'ok').length;
    say(failed ? `${failed} of ${results.length} steps did not pass (${((Date.now() - t0) / 1000).toFixed(1)} s)` : `all ${results.length} steps passed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return failed ? 1 : 0;
  } finally {
    await Promise.all([mail.close(), webhooks.close(), sms.close()]);
  }
}

main().then((code) => process.exit(code), (err: unknown) => {
  say(`demo could not run: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(2);
});
