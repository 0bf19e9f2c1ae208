// The kit's event wiring on the real Kafka broker and FerretDB: outbox → relay → consumer, duplicate
// suppression, dead-lettering without stalling the partition, and recovery after a crash between the
// state write and the publish.
import { DLQ_HEADERS, createEvent, deadLetterTopicFor } from '@pipp/contracts';
import { TestAuthority, collectMessages, dropDatabase, isolatedEnv, produceRaw, waitFor } from '@pipp/testing';
import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DLQ_MAX_VALUE_BYTES } from '../src/index.js';
import { startDemoApp } from './fixtures/demo-app.js';

let authority: TestAuthority;
const databases: string[] = [];

beforeAll(async () => {
  authority = await TestAuthority.start();
});
afterAll(async () => {
  await authority.close();
  await Promise.all(databases.map(dropDatabase));
});

function demoEnv(extra: Record<string, string> = {}) {
  const env = isolatedEnv('demo', { AUTH_JWKS_URL: authority.jwksUrl, ...extra });
  databases.push(env.MONGO_DB!);
  return env;
}


const topic = (env: Record<string, string>) => `${env.KAFKA_TOPIC_PREFIX}privacy.notification.requested`;

describe('outbox and idempotent consumer', () => {
  it('publishes a state change through the outbox and applies its effect once, even when the event is delivered twice', async () => {
    const env = demoEnv();
    const app = await startDemoApp(env);
    try {
      const token = authority.token({ sub: 'subj-1', role: 'subject', sid: 's1' });
      const res = await app.inject({ method: 'POST', url: '/notes', headers: { authorization: `Bearer ${token}` }, payload: { id: 'n-1', text: 'hello' } });
      expect(res.statusCode).toBe(201);

      const [published] = await collectMessages(topic(env), (m) => m.length >= 1);
      expect(published!.key).toBe('subj-1');
      expect(JSON.parse(published!.value!)).toMatchObject({ type: 'privacy.notification.requested', subject: 'subj-1', payload: { notificationId: 'n-1' } });
      await waitFor(async () => (await app.models.effects.findById('n-1'))?.count === 1, { what: 'the effect' });

      // The same event again (a redelivery after a rebalance or a relay retry).
      await produceRaw(topic(env), [{ key: published!.key!, value: published!.value! }]);
      // And a different event after it: once that one's effect is visible, the duplicate was handled.
      const marker = createEvent('privacy.notification.requested', {
        source: 'incident', subject: 'subj-1',
        payload: { notificationId: 'n-marker', kind: 'general', requestedBy: 'incident', audience: { subjectIds: ['subj-1'] }, title: 't', body: 'b' },
      });
      await produceRaw(topic(env), [{ key: 'subj-1', value: JSON.stringify(marker) }]);
      await waitFor(async () => (await app.models.effects.findById('n-marker'))?.count === 1, { what: 'the marker effect' });
      expect((await app.models.effects.findById('n-1'))?.count).toBe(1);
      // The outbox of the note is empty once published.
      await waitFor(async () => {
        const doc = await app.mongo.connection.collection('notes').findOne({ _id: 'n-1' as never });
        return doc && (doc._outbox ?? []).length === 0;
      }, { what: 'the outbox to drain' });
    } finally {
      await app.close();
    }
  });

  it('runs the handler again for a redelivered event of a type declared idempotent, and keeps no processed-event record for it', async () => {
    const env = demoEnv();
    const app = await startDemoApp(env, { idempotent: ['privacy.notification.requested'] });
    try {
      const event = createEvent('privacy.notification.requested', {
        source: 'incident', subject: 'subj-i',
        payload: { notificationId: 'n-i', kind: 'general', requestedBy: 'incident', audience: { subjectIds: ['subj-i'] }, title: 't', body: 'b' },
      });
      await produceRaw(topic(env), [{ key: 'subj-i', value: JSON.stringify(event) }, { key: 'subj-i', value: JSON.stringify(event) }]);
      // The handler's own idempotence is its business: here its effect counts the deliveries.
      await waitFor(async () => (await app.models.effects.findById('n-i'))?.count === 2, { what: 'both deliveries handled' });
      expect(await app.mongo.connection.collection('processed_events').countDocuments({ eventId: event.id })).toBe(0);
    } finally {
      await app.close();
    }
  });

  it('dead-letters malformed and always-failing messages with their reason and attempts, and keeps the partition moving', async () => {
    const env = demoEnv({ KAFKA_PARTITIONS: '1', CONSUMER_MAX_ATTEMPTS: '3' });
    const app = await startDemoApp(env);
    try {
      const failing = createEvent('privacy.notification.requested', {
        source: 'incident', subject: 'subj-2',
        payload: { notificationId: 'n-fail', kind: 'general', requestedBy: 'incident', audience: { subjectIds: ['subj-2'] }, title: 'always-fails', body: 'b' },
      });
      const after = createEvent('privacy.notification.requested', {
        source: 'incident', subject: 'subj-2',
        payload: { notificationId: 'n-after', kind: 'general', requestedBy: 'incident', audience: { subjectIds: ['subj-2'] }, title: 'fine', body: 'b' },
      });
      const wrongPayload = { ...after, id: crypto.randomUUID(), payload: { ...after.payload, audience: { subjectIds: [] } } };
      await produceRaw(topic(env), [
        { key: 'subj-2', value: 'this is not JSON' },
        { key: 'subj-2', value: JSON.stringify(wrongPayload) },
        { key: 'subj-2', value: JSON.stringify(failing) },
        { key: 'subj-2', value: JSON.stringify(after) },
      ]);
      // Everything after the bad messages on the same (single) partition is still processed.
      await waitFor(async () => (await app.models.effects.findById('n-after'))?.count === 1, { what: 'the message after the poison ones' });

      const dlq = await collectMessages(deadLetterTopicFor(topic(env)), (m) => m.length >= 3);
      const reasons = dlq.map((m) => m.headers[DLQ_HEADERS.reason]);
      expect(reasons[0]).toMatch(/not JSON/);
      expect(reasons[1]).toMatch(/\/payload\/audience/);
      expect(reasons[2]).toBe('this handler always fails');
      expect(dlq.map((m) => m.headers[DLQ_HEADERS.attempts])).toEqual(['0', '0', '3']);
      expect(dlq[2]!.headers[DLQ_HEADERS.sourceTopic]).toBe(topic(env));
      expect(dlq[2]!.value).toBe(JSON.stringify(failing));
      expect(await app.models.effects.findById('n-fail')).toBeNull();
    } finally {
      await app.close();
    }
  });
  it('dead-letters a message that is over the broker\'s size limit uncompressed, and the partition moves on', async () => {
    // 3 MB that the broker took gzip-compressed: copied as it is, the dead letter was refused for good
    // (over max.message.bytes) and the consumer restarted at that message forever.
    const env = demoEnv({ KAFKA_PARTITIONS: '1' });
    const app = await startDemoApp(env);
    try {
      const huge = JSON.stringify({ junk: 'a'.repeat(3_000_000) });
      const after = createEvent('privacy.notification.requested', {
        source: 'incident', subject: 'subj-3',
        payload: { notificationId: 'n-after-huge', kind: 'general', requestedBy: 'incident', audience: { subjectIds: ['subj-3'] }, title: 'fine', body: 'b' },
      });
      await produceRaw(topic(env), [{ key: 'subj-3', value: huge, headers: { big: 'h'.repeat(20_000) } }, { key: 'subj-3', value: JSON.stringify(after) }], { gzip: true });
      await waitFor(async () => (await app.models.effects.findById('n-after-huge'))?.count === 1, { what: 'the message after the oversized one', timeoutMs: 30_000 });

      const [dlq] = await collectMessages(deadLetterTopicFor(topic(env)), (m) => m.length >= 1);
      expect(dlq!.headers[DLQ_HEADERS.valueBytes]).toBe(String(huge.length));
      expect(dlq!.headers[DLQ_HEADERS.valueSha256]).toBe(createHash('sha256').update(huge).digest('hex'));
      expect(dlq!.headers[DLQ_HEADERS.headersDropped]).toBe('1');
      expect(dlq!.value).toBe(huge.slice(0, DLQ_MAX_VALUE_BYTES));
    } finally {
      await app.close();
    }
  });
});

describe('outbox.update', () => {
  it('updates a document and publishes the events appended to it in the same write (no projection FerretDB rejects)', async () => {
    const env = demoEnv();
    const app = await startDemoApp(env);
    try {
      await app.outbox.insert(app.models.notes, { _id: 'n-upd', subjectId: 'subj-3', text: 'before' }, []);
      const entry = app.outbox.entry('privacy.notification.requested', {
        subject: 'subj-3',
        payload: { notificationId: 'n-upd', kind: 'general', requestedBy: 'incident', audience: { subjectIds: ['subj-3'] }, title: 'updated', body: 'b' },
      });
      const doc = await app.outbox.update(app.models.notes, { _id: 'n-upd' }, { $set: { text: 'after' } }, [entry]);
      expect(doc?.text).toBe('after');
      const [published] = await collectMessages(topic(env), (m) => m.length >= 1);
      expect(JSON.parse(published!.value!)).toMatchObject({ subject: 'subj-3', payload: { notificationId: 'n-upd', title: 'updated' } });
      expect(await app.outbox.update(app.models.notes, { _id: 'missing' }, { $set: { text: 'x' } }, [entry])).toBeNull();
    } finally {
      await app.close();
    }
  });
});

describe('a failed publish', () => {
  it('keeps one subject\'s events in order: what failed goes out before what was written after it', async () => {
    const env = demoEnv();
    const app = await startDemoApp(env);
    try {
      const note = (id: string) => app.outbox.entry('privacy.notification.requested', {
        subject: 'subj-order',
        payload: { notificationId: id, kind: 'general', requestedBy: 'incident', audience: { subjectIds: ['subj-order'] }, title: id, body: 'b' },
      });
      // The first publish fails (as when the broker restarts); while it is failing, the same subject's
      // next event is written.
      const producer = app.kafka.producer;
      const real = producer.sendBatch.bind(producer);
      let failed = false;
      producer.sendBatch = async (batch) => {
        // Only the publish of the first event fails (the service's own start-up events go through).
        const first = batch.topicMessages?.some((t) => t.messages.some((m) => String(m.value).includes('"order-1"')));
        if (failed || !first) return real(batch);
        failed = true;
        await app.outbox.insert(app.models.notes, { _id: 'order-2', subjectId: 'subj-order', text: 'second' }, [note('order-2')]);
        throw new Error('broker unavailable (injected)');
      };
      await app.outbox.insert(app.models.notes, { _id: 'order-1', subjectId: 'subj-order', text: 'first' }, [note('order-1')]);
      const messages = await collectMessages(topic(env), (m) => m.filter((x) => x.key === 'subj-order').length >= 2);
      expect(failed).toBe(true);
      expect(messages.filter((m) => m.key === 'subj-order').map((m) => JSON.parse(m.value!).payload.notificationId)).toEqual(['order-1', 'order-2']);
    } finally {
      await app.close();
    }
  });
});

describe('crash between the state write and the publish', () => {
  const child = fileURLToPath(new URL('./fixtures/crash-after-write.ts', import.meta.url));

  /** Runs the fixture in a real child process that writes, then SIGKILLs itself before publishing. */
  function crashAfterWrite(env: Record<string, string>, mode: 'outbox-insert' | 'plain-create') {
    return new Promise<NodeJS.Signals | null>((resolve, reject) => {
      const proc = fork(child, [mode], { env: { ...process.env, ...env }, execArgv: ['--import', 'tsx'], stdio: 'inherit' });
      proc.once('error', reject);
      proc.once('exit', (_code, signal) => resolve(signal));
    });
  }

  for (const mode of ['outbox-insert', 'plain-create'] as const) {
    it(`still gets the event out after a restart (${mode})`, async () => {
      const env = demoEnv({ OUTBOX_SWEEP_MS: '1000' });
      expect(await crashAfterWrite(env, mode)).toBe('SIGKILL');

      // The state was written, the event not published.
      const app = await startDemoApp(env);
      try {
        await waitFor(async () => (await app.models.effects.findById(`crash-${mode}`))?.count === 1, { what: 'the recovered event\'s effect', timeoutMs: 30_000 });
        const messages = await collectMessages(topic(env), (m) => m.length >= 1);
        expect(messages.filter((m) => JSON.parse(m.value!).payload.notificationId === `crash-${mode}`)).toHaveLength(1);
      } finally {
        await app.close();
      }
    });
  }
});
