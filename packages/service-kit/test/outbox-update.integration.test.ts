// Outbox.update on the real database: the state change and its event are one write, and it works on
// FerretDB 1.24, which implements no projection on findAndModify (mongoose would send one for the
// hidden outbox field).
import { collectMessages, dropDatabase, dropTopics, isolatedEnv, TestAuthority, waitFor } from '@pipp/testing';
import { Schema } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { outboxPlugin } from '../src/index.js';
import { startDemoApp } from './fixtures/demo-app.js';

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
  const app = await startDemoApp(env);
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
  const app = await startDemoApp(env);
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
  const app = await startDemoApp(env);
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
  const app = await startDemoApp(env);
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
    }, { what: 'both events published and removed from the document', timeoutMs: 30_000 }); // a loaded 2-core machine (the full suite) once took over 15 s
    // A duplicate would be on the topic before this end mark (publish precedes removal; same key, same partition).
    await app.outbox.insert(app.models.notes, { _id: 'w-end', subjectId: 'subj-w', text: 'end' }, [note('w-end')]);
    const ids = (ms: { key: string | null; value: string | null }[]) => ms.filter((m) => m.key === 'subj-w').map((m) => JSON.parse(m.value!).payload.notificationId as string);
    const messages = await collectMessages(`${env.KAFKA_TOPIC_PREFIX}privacy.notification.requested`, (ms) => ids(ms).includes('w-end'));
    expect(ids(messages)).toEqual(['w-1', 'w-2', 'w-end']);
  } finally {
    await app.close();
  }
});

describe('what the relay sends again', () => {
  const note = (app: Awaited<ReturnType<typeof startDemoApp>>, subject: string, id: string) => app.outbox.entry('privacy.notification.requested', {
    subject, payload: { notificationId: id, kind: 'general', requestedBy: 'incident', audience: { subjectIds: [subject] }, title: id, body: 'b' },
  });
  const idsOf = (ms: { key: string | null; value: string | null }[], subject: string) => ms.filter((m) => m.key === subject).map((m) => JSON.parse(m.value!).payload.notificationId as string);
  const topic = () => `${env.KAFKA_TOPIC_PREFIX}privacy.notification.requested`;

  it('sends an older entry this process did not write before the new one of the same document', async () => {
    const app = await startDemoApp(env);
    try {
      // An entry left in the document by another writer (a crashed instance, a lost acknowledgement).
      await app.mongo.connection.collection('notes').insertOne({ _id: 'o-1' as never, subjectId: 'subj-o', text: 'x', _outbox: [note(app, 'subj-o', 'o-old')] });
      await app.outbox.update(app.models.notes, { _id: 'o-1' }, { $set: { text: 'y' } }, [note(app, 'subj-o', 'o-new')]);
      await app.outbox.insert(app.models.notes, { _id: 'o-end', subjectId: 'subj-o', text: 'end' }, [note(app, 'subj-o', 'o-end')]);
      const messages = await collectMessages(topic(), (ms) => idsOf(ms, 'subj-o').includes('o-end'));
      expect(idsOf(messages, 'subj-o')).toEqual(['o-old', 'o-new', 'o-end']);
    } finally {
      await app.close();
    }
  });

  it('after a failed removal from one collection, sends again only what that collection still holds', async () => {
    const app = await startDemoApp(env);
    try {
      const memos = app.outbox.register(app.mongo.model<{ _id: string; subjectId: string }>('Memo', new Schema({ _id: String, subjectId: String }).plugin(outboxPlugin)));
      await memos.createCollection();
      const connection = app.mongo.connection;
      const collection = connection.collection.bind(connection);
      let failed = false;
      const spy = vi.spyOn(connection, 'collection').mockImplementation(((name: string, ...rest: unknown[]) => {
        const c = collection(name, ...(rest as []));
        if (name !== 'memos' || failed) return c;
        return new Proxy(c, { get: (t, k) => (k === 'bulkWrite' ? async () => { failed = true; throw new Error('removal failed (injected)'); } : Reflect.get(t, k)) });
      }) as never);
      // One pass sends both documents' events; removing the memo's fails once.
      await Promise.all([
        app.outbox.insert(app.models.notes, { _id: 'f-note', subjectId: 'subj-f', text: 'x' }, [note(app, 'subj-f', 'f-note')]),
        app.outbox.insert(memos, { _id: 'f-memo', subjectId: 'subj-f' }, [note(app, 'subj-f', 'f-memo')]),
      ]);
      await waitFor(async () => failed && (await connection.collection('memos').findOne({ _id: 'f-memo' as never }))?._outbox?.length === 0, { what: 'the memo\'s removal to succeed on a later pass' });
      spy.mockRestore();
      await app.outbox.insert(app.models.notes, { _id: 'f-end', subjectId: 'subj-f', text: 'end' }, [note(app, 'subj-f', 'f-end')]);
      const sent = idsOf(await collectMessages(topic(), (ms) => idsOf(ms, 'subj-f').includes('f-end')), 'subj-f');
      // The note was removed from its document at the first pass: never sent again. The memo's event,
      // still in its document, goes out again (at least once).
      expect(sent.filter((id) => id === 'f-note')).toHaveLength(1);
      expect(sent.filter((id) => id === 'f-memo').length).toBeGreaterThanOrEqual(1);
    } finally {
      await app.close();
    }
  });

  it('sends each event once when drains overlap (flushes, the sweep, the relay)', async () => {
    // Drains run one after another: two at once would both take the documents pending and publish
    // their events twice before either removed them.
    const app = await startDemoApp(env);
    try {
      await app.outbox.stop(); // the relay stops polling: what is written next waits for a flush
      const ids = Array.from({ length: 30 }, (_, i) => `d-${i}`);
      for (const id of ids) await app.outbox.insert(app.models.notes, { _id: id, subjectId: 'subj-d', text: 'x' }, [note(app, 'subj-d', id)]);
      const producer = app.kafka.producer;
      const real = producer.sendBatch.bind(producer);
      producer.sendBatch = async (batch) => { await new Promise((r) => setTimeout(r, 50)); return real(batch); };
      await Promise.all([app.outbox.flush(), app.outbox.flush(), app.outbox.flush()]);
      await app.outbox.insert(app.models.notes, { _id: 'd-end', subjectId: 'subj-d', text: 'end' }, [note(app, 'subj-d', 'd-end')]);
      await app.outbox.flush();
      const sent = idsOf(await collectMessages(topic(), (ms) => idsOf(ms, 'subj-d').includes('d-end')), 'subj-d');
      expect(sent.filter((id) => id !== 'd-end').sort()).toEqual([...ids].sort());
    } finally {
      await app.close();
    }
  });
});
