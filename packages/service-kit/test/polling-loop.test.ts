// PollingLoop: the background worker of the outbox relay, incident's dispatcher and data-sharing's
// notices: one pass at a time, a kick during a pass runs one more, a failure is logged and retried.
import { describe, expect, it } from 'vitest';
import { PollingLoop } from '../src/index.js';

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe('PollingLoop', () => {
  it('never runs two passes at once, and runs one more pass for kicks during a pass', async () => {
    let passes = 0;
    let inside = 0;
    let max = 0;
    const loop = new PollingLoop({
      intervalMs: 60_000, what: 'test pass', log: { warn: () => {} },
      pass: async () => { passes += 1; inside += 1; max = Math.max(max, inside); await tick(20); inside -= 1; },
    });
    loop.start(); // the first pass
    loop.kick();
    loop.kick(); // both during the first pass: one more pass, not two
    await tick(10);
    await loop.idle();
    expect(passes).toBe(2);
    expect(max).toBe(1);
    await loop.stop();
    loop.kick();
    expect(passes).toBe(2); // stopped: kicks do nothing
    expect(loop.stopped).toBe(true);
  });

  it('logs a failed pass and tries again at the next tick', async () => {
    const warnings: string[] = [];
    let calls = 0;
    const loop = new PollingLoop({
      intervalMs: 20, what: 'test pass', log: { warn: (_o, msg) => { warnings.push(msg); } },
      pass: async () => { calls += 1; if (calls === 1) throw new Error('broker away'); },
    });
    loop.start();
    await tick(70);
    await loop.stop();
    expect(warnings[0]).toBe('test pass failed; will retry');
    expect(calls).toBeGreaterThanOrEqual(2);
  });
});
