// The audit writer's batching, retry and fail-closed behaviour, with an injected store (the real store
// is exercised by gateway.integration.test.ts).
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../src/domain/audit.js';
import { AuditWriter } from '../src/plugins/audit.js';

const log = pino({ level: 'silent' });
const record = (i: number): AuditRecord => ({
  _id: `r${i}`, at: new Date(), requestId: `q${i}`, actor: { role: 'anonymous' }, service: 'consent', method: 'GET',
  route: '/v1/consent/x', pathClass: 'protected', outcome: 'succeeded', status: 200, durationMs: 1,
});

describe('AuditWriter', () => {
  it('writes in batches of batchSize, and within flushMs otherwise', async () => {
    const batches: number[] = [];
    const w = new AuditWriter(async (r) => { batches.push(r.length); }, { flushMs: 20, batchSize: 3, maxBuffered: 100, log });
    for (let i = 0; i < 7; i++) w.append(record(i));
    await new Promise((r) => setTimeout(r, 60));
    expect(batches.reduce((a, b) => a + b, 0)).toBe(7);
    expect(Math.max(...batches)).toBeLessThanOrEqual(3);
    expect(w.pending).toBe(0);
  });

  it('keeps a failed batch and retries it; refuses new audited requests once the buffer is full', async () => {
    let failing = true;
    const written: string[] = [];
    const w = new AuditWriter(async (r) => {
      if (failing) throw new Error('database down');
      written.push(...r.map((x) => x._id));
    }, { flushMs: 10, batchSize: 10, maxBuffered: 3, log });
    for (let i = 0; i < 3; i++) w.append(record(i));
    await w.flush();
    expect(w.pending).toBe(3);
    expect(w.failure).toBe('database down');
    expect(() => w.ensureCapacity()).toThrow(expect.objectContaining({ statusCode: 503, code: 'PIPP_UNAVAILABLE' }));
    failing = false;
    await w.close();
    expect(written).toEqual(['r0', 'r1', 'r2']);
    expect(w.failure).toBeUndefined();
    expect(() => w.ensureCapacity()).not.toThrow();
  });
});
