// kafkajs 2.2.4 keeps, on every broker connection, a timer that fires every millisecond while no request
// waits in its queue (kafkajs issue #1556): a few hundred wake-ups per second per connection, in every
// service, idle or not. patches/kafkajs+2.2.4.patch (applied by `npm ci` through patch-package) stops
// it; these tests, on the real broker, fail without the patch and check that queued requests still go out.
import { createRequire } from 'node:module';
import { Kafka, logLevel } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';

// kafkajs's own request queue module, the one its connections use (the package has no exports map).
const RequestQueue = createRequire(import.meta.url)('kafkajs/src/network/requestQueue/index.js') as { prototype: { checkPendingRequests(): void } };
const original = RequestQueue.prototype.checkPendingRequests;
const kafka = () => new Kafka({ clientId: 'kafkajs-patch-test', brokers: process.env.KAFKA_BROKERS!.split(','), logLevel: logLevel.NOTHING });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterEach(() => {
  RequestQueue.prototype.checkPendingRequests = original;
});

describe('kafkajs request queue (patched)', () => {
  it('does not wake up while a connection is idle', async () => {
    let checks = 0;
    RequestQueue.prototype.checkPendingRequests = function (this: unknown) {
      checks += 1;
      return original.call(this);
    };
    const admin = kafka().admin();
    await admin.connect();
    try {
      await admin.listTopics();
      await sleep(50);
      checks = 0;
      await sleep(500);
      // Unpatched: one check per millisecond (about 400–500 here); patched: none without requests.
      expect(checks).toBeLessThan(5);
    } finally {
      await admin.disconnect();
    }
  });

  it('still sends requests that had to wait for an in-flight slot', async () => {
    const producer = kafka().producer({ maxInFlightRequests: 1, allowAutoTopicCreation: false });
    const admin = kafka().admin();
    const topic = `kafkajs-patch.${Date.now()}`;
    await Promise.all([producer.connect(), admin.connect()]);
    try {
      await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1, replicationFactor: 1 }] });
      // Twenty sends at once on one connection with one request in flight: nineteen wait in the queue.
      const sent = await Promise.all(Array.from({ length: 20 }, (_, i) => producer.send({ topic, messages: [{ value: String(i) }] })));
      expect(sent).toHaveLength(20);
      const offsets = await admin.fetchTopicOffsets(topic);
      expect(offsets[0]!.high).toBe('20');
    } finally {
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await Promise.all([producer.disconnect(), admin.disconnect()]);
    }
  });
});
