// Outbox.update on the real database: the state change and its event are one write, and it works on
// FerretDB 1.24, which implements no projection on findAndModify (mongoose would send one for the
// hidden outbox field).
import { collectMessages, dropDatabase, dropTopics, isolatedEnv, TestAuthority, waitFor } from '@pipp/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../src/index.js';
import { buildDemoApp, DemoConfigSchema } from './fixtures/demo-app.js';

let authority: TestAuthority;
let env: Record<string, string>;
beforeAll(async () => {
  authority = await TestAuthority.start();
  env = isolatedEnv('outboxupd', { AUTH_JWKS_URL: authority.jwksUrl });
});
afterAll(async () => {
  await authority.close();
  await dropDatabase(env.MONGO_DB!);
  await dropTopics(env.KAFKA_TOPIC_PREFIX!);
});

it('updates a document and appends its event in one write, then relays it', async () => {
  const app = await buildDemoApp(loadConfig(DemoConfigSchema, env));
  await app.ready();
  try {
    await app.models.notes.create({ _id: 'u-1', subjectId: 'subj-u', text: 'before' });
    const entry = app.outbox.entry('privacy.notification.requested', {
      subject: 'subj-u',
      payload: { notificationId: 'u-1', kind: 'general', requestedBy: 'incident', audience: { subjectIds: ['subj-u'] }, title: 't', body: 'b' },
    });
    const doc = await app.outbox.update(app.models.notes, { _id: 'u-1' }, { $set: { text: 'after' } }, [entry]);
    expect(doc?.text).toBe('after');
    expect(await app.outbox.update(app.models.notes, { _id: 'missing' }, { $set: { text: 'x' } }, [entry])).toBeNull();
    await waitFor(async () => (await app.models.effects.findById('u-1'))?.count === 1, { what: 'the relayed event\'s effect' });
    // Keys: the data subject keeps one person's events in order; an explicit key orders a flow without one.
    const payload = { notificationId: 'k', kind: 'general' as const, requestedBy: 'incident' as const, audience: { allSubjects: true as const }, title: 't', body: 'b' };
    expect(entry.key).toBe('subj-u');
    expect(app.outbox.entry('privacy.notification.requested', { payload, key: 'flow-1' }).key).toBe('flow-1');
    const bare = app.outbox.entry('privacy.notification.requested', { payload });
    expect(bare.key).toBe(bare.eventId);
  } finally {
    await app.close();
  }
});

it('keeps every change and every event when one document is updated concurrently (FerretDB 1.24 loses unserialized ones)', async () => {
  const app = await buildDemoApp(loadConfig(DemoConfigSchema, env));
  await app.ready();
  try {
    await app.models.notes.create({ _id: 'c-1', subjectId: 'subj-c', text: 'start' });
    const ids = Array.from({ length: 20 }, (_, i) => `c-1-${i}`);
    await Promise.all(ids.map((id) => app.outbox.update(app.models.notes, { _id: 'c-1' }, { $set: { text: id } }, [app.outbox.entry('privacy.notification.requested', {
      subject: 'subj-c',
      payload: { notificationId: id, kind: 'general', requestedBy: 'incident', audience: { subjectIds: ['subj-c'] }, title: 't', body: 'b' },
    })])));
    // Every event reaches the consumer: none was lost to a concurrent write of the same document.
    await waitFor(async () => (await app.models.effects.countDocuments({ _id: { $in: ids } })) === ids.length, { what: 'all 20 events', timeoutMs: 30_000 });
    await waitFor(async () => {
      const doc = await app.mongo.connection.collection('notes').findOne({ _id: 'c-1' as never });
      return doc && (doc._outbox ?? []).length === 0;
    }, { what: 'the outbox to drain' });
  } finally {
    await app.close();
  }
});

it('keeps a direct write to a document whose events the relay is publishing at that moment', async () => {
  // On FerretDB 1.24 every update rewrites the whole document, so the relay's removal of published
  // entries and a service's own `$set` on the same document undo each other unless both take the
  // document's lock (documentLocksPlugin). Found as a declined item that came back (data-sharing).
  const app = await buildDemoApp(loadConfig(DemoConfigSchema, env));
  await app.ready();
  try {
    const ids = Array.from({ length: 40 }, (_, i) => `race-${i}`);
    await Promise.all(ids.map(async (id) => {
      await app.outbox.insert(app.models.notes, { _id: id, subjectId: 'subj-r', text: 'created' }, [app.outbox.entry('privacy.notification.requested', {
        subject: 'subj-r',
        payload: { notificationId: id, kind: 'general', requestedBy: 'incident', audience: { subjectIds: ['subj-r'] }, title: 't', body: 'b' },
      })]);
      await app.models.notes.updateOne({ _id: id }, { $set: { text: 'changed' } });
    }));
    await waitFor(async () => (await app.models.effects.countDocuments({ _id: { $in: ids } })) === ids.length, { what: 'all 40 events', timeoutMs: 30_000 });
    const notes = await app.models.notes.find({ _id: { $in: ids } }).lean();
    expect(notes.filter((n) => n.text !== 'changed').map((n) => n._id)).toEqual([]);
  } finally {
    await app.close();
  }
});

it('publishes each event once when its document is written again while the relay publishes it', async () => {
  // The relay publishes the entries this process wrote without reading them back; what a write adds
  // during a publish must go out after it, and what was published must not go out again.
  const app = await buildDemoApp(loadConfig(DemoConfigSchema, env));
  await app.ready();
  try {
    const note = (id: string) => app.outbox.entry('privacy.notification.requested', {
      subject: 'subj-w',
      payload: { notificationId: id, kind: 'general', requestedBy: 'incident', audience: { subjectIds: ['subj-w'] }, title: id, body: 'b' },
    });
    const producer = app.kafka.producer;
    const real = producer.sendBatch.bind(producer);
    let wroteDuring = false;
    producer.sendBatch = async (batch) => {
      if (!wroteDuring && batch.topicMessages?.some((t) => t.messages.some((m) => String(m.value).includes('"w-1"')))) {
        wroteDuring = true;
        await app.outbox.update(app.models.notes, { _id: 'w' }, { $set: { text: 'second' } }, [note('w-2')]);
      }
      return real(batch);
    };
    await app.outbox.insert(app.models.notes, { _id: 'w', subjectId: 'subj-w', text: 'first' }, [note('w-1')]);
    await waitFor(async () => {
      const doc = await app.mongo.connection.collection('notes').findOne({ _id: 'w' as never });
      return wroteDuring && doc !== null && (doc._outbox ?? []).length === 0;
    }, { what: 'both events published and removed from the document' });
    // A duplicate would be on the topic before this end mark (publish precedes removal; same key, same partition).
    await app.outbox.insert(app.models.notes, { _id: 'w-end', subjectId: 'subj-w', text: 'end' }, [note('w-end')]);
    const ids = (ms: { key: string | null; value: string | null }[]) => ms.filter((m) => m.key === 'subj-w').map((m) => JSON.parse(m.value!).payload.notificationId as string);
    const messages = await collectMessages(`${env.KAFKA_TOPIC_PREFIX}privacy.notification.requested`, (ms) => ids(ms).includes('w-end'));
    expect(ids(messages)).toEqual(['w-1', 'w-2', 'w-end']);
  } finally {
    await app.close();
  }
});
