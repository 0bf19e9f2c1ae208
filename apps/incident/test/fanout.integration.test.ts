// Fan-out at scale on the real broker and database: an incident with more affected subjects than one
// chunk holds is notified without holding the request open; every subject gets exactly one delivery
// record across chunk and batch boundaries; progress is visible; those without a channel are covered
// by an announcement.
import { TestAuthority, waitFor } from '@pipp/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CHUNK_SIZE } from '../src/domain/audience.js';
import { incidentBody, produce, startIncident, startSmtp, type SmtpSink } from './helpers.js';

let authority: TestAuthority;
let smtp: SmtpSink;
let svc: Awaited<ReturnType<typeof startIncident>>;
let operator: string;
const N = CHUNK_SIZE + 1500;

beforeAll(async () => {
  authority = await TestAuthority.start();
  smtp = await startSmtp();
  svc = await startIncident(authority, { SMTP_URL: smtp.url, FANOUT_BATCH_SIZE: '1000', ANNOUNCEMENT_THRESHOLD: String(N) });
  operator = authority.token({ sub: 'op-1', role: 'operator', sid: 'so1' });
});
afterAll(async () => {
  await svc?.close();
  await smtp?.close();
  await authority?.close();
});

const api = (method: 'GET' | 'POST', url: string, payload?: object) =>
  svc.app.inject({ method, url: `/v1/incident${url}`, headers: { authorization: `Bearer ${operator}` }, ...(payload ? { payload } : {}) });

it('notifies more subjects than one chunk holds, once each, and announces for those without a channel', async () => {
  const ids = Array.from({ length: N }, (_, i) => `u${String(i).padStart(6, '0')}`);
  await produce(svc.env, 'privacy.subject.contact-changed', 'identity', { subjectId: ids[0]!, channels: { email: 'first@example.com' } }, ids[0]);
  await produce(svc.env, 'privacy.subject.contact-changed', 'identity', { subjectId: ids[N - 1]!, channels: { email: 'last@example.com' } }, ids[N - 1]);
  await waitFor(() => svc.app.models.contacts.countDocuments({}).then((c) => c === 2), { what: 'contacts' });

  const incident = (await api('POST', '/admin/incidents', incidentBody(ids.slice(0, 6000)))).json();
  // The rest in two more uploads, one overlapping the first (duplicates are not counted twice).
  expect((await api('POST', `/admin/incidents/${incident.id}/affected-subjects`, { subjectIds: ids.slice(5000, 10_000) })).json()).toEqual({ added: 4000, affectedCount: 10_000 });
  expect((await api('POST', `/admin/incidents/${incident.id}/affected-subjects`, { subjectIds: ids.slice(10_000) })).json()).toEqual({ added: 1500, affectedCount: N });
  expect(await svc.app.models.affected.countDocuments({ incidentId: incident.id })).toBe(2);

  const started = await api('POST', `/admin/incidents/${incident.id}/notifications`, {});
  expect(started.statusCode).toBe(202);
  expect(started.json()).toMatchObject({ status: 'planning', audience: { size: N }, reach: { oneByOne: true } });

  const done = await waitFor(async () => {
    const res = (await api('GET', `/admin/notifications/${started.json().id}`)).json();
    return res.status === 'completed' ? res : null;
  }, { what: 'the notification to settle', timeoutMs: 180_000, intervalMs: 2000 });
  expect(done.progress).toMatchObject({
    audienceSize: N, planned: N, batches: 12, batchesProcessed: 12, percentDone: 100,
    byStatus: { delivered: 2, unreachable: N - 2, queued: 0, retrying: 0, failed: 0 }, byChannel: { email: 2 },
  });
  expect(await svc.app.models.deliveries.countDocuments({ notificationId: started.json().id })).toBe(N);
  expect(smtp.messages.map((m) => JSON.stringify(m.to)).sort()).toEqual([expect.stringContaining('first@example.com'), expect.stringContaining('last@example.com')]);
  expect(done.announcementIds).toEqual([`ann_${started.json().id}_unreachable-subjects`]);
  // The fan-out's working records are gone once it settled.
  expect(await svc.app.models.batches.countDocuments({ notificationId: started.json().id })).toBe(0);
  expect(await svc.app.models.queue.countDocuments({ notificationId: started.json().id })).toBe(0);
}, 240_000);
