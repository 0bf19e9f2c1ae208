// Two instances of the service on the same database and topics share one notification's work (Kafka
// consumer groups for the batches, leases on the delivery queue) and send every notice exactly once.
import { TestAuthority, waitFor } from '@pipp/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { incidentBody, produce, startIncident, startSmtp, startWithEnv, type SmtpSink } from './helpers.js';

let authority: TestAuthority;
let smtp: SmtpSink;
let first: Awaited<ReturnType<typeof startIncident>>;
let second: Awaited<ReturnType<typeof startWithEnv>>;

beforeAll(async () => {
  authority = await TestAuthority.start();
  smtp = await startSmtp();
  first = await startIncident(authority, { SMTP_URL: smtp.url, FANOUT_BATCH_SIZE: '5', DISPATCH_CONCURRENCY: '4', KAFKA_PARTITIONS: '4' });
  second = await startWithEnv(first.env);
});
afterAll(async () => {
  await second?.close();
  await first?.close();
  await smtp?.close();
  await authority?.close();
});

it('sends each notice once when two instances share the work', async () => {
  const ids = Array.from({ length: 60 }, (_, i) => `m${String(i).padStart(3, '0')}`);
  for (const id of ids) await produce(first.env, 'privacy.subject.contact-changed', 'identity', { subjectId: id, channels: { email: `${id}@example.com` } }, id);
  await waitFor(() => first.app.models.contacts.countDocuments({}).then((n) => n === ids.length), { what: 'contacts', timeoutMs: 30_000 });
  const operator = authority.token({ sub: 'op-1', role: 'operator', sid: 'so1' });
  const incident = (await first.app.inject({ method: 'POST', url: '/v1/incident/admin/incidents', headers: { authorization: `Bearer ${operator}` }, payload: incidentBody(ids) })).json();
  const started = (await second.inject({ method: 'POST', url: `/v1/incident/admin/incidents/${incident.id}/notifications`, headers: { authorization: `Bearer ${operator}` }, payload: {} })).json();
  await waitFor(async () => (await first.app.models.notifications.findById(started.id).lean())?.status === 'completed', { what: 'completion', timeoutMs: 60_000 });
  const recipients = smtp.messages.map((m) => (m.to as { text: string }).text).sort();
  expect(recipients).toEqual(ids.map((id) => `${id}@example.com`));
  const deliveries = await first.app.models.deliveries.find({ notificationId: started.id }).lean();
  expect(deliveries.every((d) => d.status === 'delivered' && d.attempts.length === 1)).toBe(true);
});
