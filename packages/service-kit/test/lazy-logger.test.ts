// The kit's request logger: nothing is built until something is logged at an enabled level, and what
// is logged carries the same bindings (request id) and the kit's PI redaction.
import pino from 'pino';
import { Writable } from 'node:stream';
import { expect, it } from 'vitest';
import { lazyChildLogger, loggerOptions } from '../src/index.js';

it('creates the child logger only for enabled levels and logs like the real one, with redaction', () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({ write(chunk, _enc, done) { lines.push(JSON.parse(String(chunk))); done(); } });
  const { transport: _t, ...options } = loggerOptions('consent', 'info');
  const parent = pino(options, sink);
  let children = 0;
  const counting = Object.assign(Object.create(parent), { child: (b: object, o: object) => { children += 1; return parent.child(b, o); } });

  const log = lazyChildLogger(counting, { requestId: 'req-1' }, { level: 'warn' });
  log.info('incoming request');
  log.debug('details');
  expect(children).toBe(0);
  expect(log.level).toBe('warn');

  log.warn({ phone: '+8613800000000' }, 'refused');
  log.error('failed');
  expect(children).toBe(1);
  expect(lines).toEqual([
    expect.objectContaining({ level: 40, requestId: 'req-1', msg: 'refused', phone: '[redacted]', service: 'consent' }),
    expect.objectContaining({ level: 50, requestId: 'req-1', msg: 'failed' }),
  ]);
});
