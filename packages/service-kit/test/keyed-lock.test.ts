// KeyedLock: one writer per document at a time within a process (FerretDB 1.24 loses concurrent
// updates of one document), re-entrant for a holder, independent across keys, no deadlock on several.
import { describe, expect, it } from 'vitest';
import { KeyedLock } from '../src/index.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('KeyedLock', () => {
  it('runs work on one key one at a time, in order', async () => {
    const lock = new KeyedLock();
    const log: string[] = [];
    let inside = 0;
    let max = 0;
    await Promise.all([1, 2, 3, 4].map((n) => lock.run('doc/1', async () => {
      inside += 1; max = Math.max(max, inside);
      log.push(`start ${n}`);
      await tick();
      log.push(`end ${n}`);
      inside -= 1;
    })));
    expect(max).toBe(1);
    expect(log).toEqual(['start 1', 'end 1', 'start 2', 'end 2', 'start 3', 'end 3', 'start 4', 'end 4']);
  });

  it('runs a lazy thenable (a mongoose Query) holding the key, so its own write hook does not wait for it', async () => {
    // Found as a hung erasure join in retention: withDocument(…, () => model.findOneAndUpdate(…).lean())
    // returns a Query, which executes only when awaited; its lock hook must see the key as held.
    const lock = new KeyedLock();
    const query: PromiseLike<string> = {
      then(resolve, reject) { return lock.acquire('doc/q').then((release) => { release(); return 'written'; }).then(resolve, reject); },
    };
    const outcome = await Promise.race([lock.run('doc/q', () => query), new Promise((r) => setTimeout(() => r('deadlocked'), 1000))]);
    expect(outcome).toBe('written');
  });

  it('lets different keys proceed together and a holder take its key again', async () => {
    const lock = new KeyedLock();
    let inside = 0;
    let max = 0;
    await Promise.all(['a', 'b', 'c'].map((k) => lock.run(k, async () => { inside += 1; max = Math.max(max, inside); await tick(); inside -= 1; })));
    expect(max).toBe(3);
    await expect(lock.run('a', () => lock.run('a', async () => 'nested'))).resolves.toBe('nested');
  });

  it('lets work started inside a holder run outside its keys', async () => {
    const lock = new KeyedLock();
    const order: string[] = [];
    await lock.run('doc/2', async () => {
      // Inside, a nested run would be re-entrant and run at once; a detached one waits for the holder.
      void lock.outside(() => lock.run('doc/2', async () => { order.push('detached'); }));
      await tick();
      order.push('holder');
    });
    await tick();
    expect(order).toEqual(['holder', 'detached']);
  });

  it('takes several keys without deadlock and releases after a failure', async () => {
    const lock = new KeyedLock();
    const order: string[] = [];
    await Promise.all([
      lock.runAll(['x', 'y'], async () => { order.push('xy'); await tick(); }),
      lock.runAll(['y', 'x'], async () => { order.push('yx'); await tick(); }),
      lock.run('x', async () => { throw new Error('boom'); }).catch(() => order.push('failed')),
    ]);
    expect(order.sort()).toEqual(['failed', 'xy', 'yx']);
    await expect(lock.run('x', async () => 'free')).resolves.toBe('free');
  });

  it('keeps async context tracking on only while a key is held or awaited, and stays re-entrant across cycles', async () => {
    // On Node 20 an enabled AsyncLocalStorage costs every promise of the process (the decision API's
    // throughput); an idle lock must leave it off.
    const lock = new KeyedLock();
    expect(lock.contextTracking).toBe(false);
    for (const round of [1, 2]) {
      let waiting!: Promise<string>;
      const seen: boolean[] = [];
      await lock.run('doc/3', async () => {
        seen.push(lock.contextTracking);
        waiting = lock.outside(() => lock.run('doc/3', async () => { seen.push(lock.contextTracking); return 'waited'; }));
        await tick();
        await expect(lock.run('doc/3', async () => `nested ${round}`)).resolves.toBe(`nested ${round}`);
      });
      // The first holder is done but the detached one was waiting: tracking stays on until it ends too.
      await expect(waiting).resolves.toBe('waited');
      expect(seen).toEqual([true, true]);
      expect(lock.contextTracking).toBe(false);
    }
  });

  it('keeps a holder re-entrant when another key is released meanwhile', async () => {
    const lock = new KeyedLock();
    const outcome = await lock.run('doc/a', async () => {
      await lock.run('doc/b', async () => 'other holder done');
      expect(lock.contextTracking).toBe(true);
      return Promise.race([lock.run('doc/a', async () => 'nested'), new Promise((r) => setTimeout(() => r('deadlocked'), 1000))]);
    });
    expect(outcome).toBe('nested');
  });
});
