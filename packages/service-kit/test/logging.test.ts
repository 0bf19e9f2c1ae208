// Logs never carry phone numbers, passwords, tokens or other PI in clear (DESIGN.md, house style 8).
import pino from 'pino';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loggerOptions, maskIp, scrub } from '../src/index.js';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
  return { log: pino(loggerOptions('identity', 'info'), stream), lines };
}

describe('structured logs', () => {
  it('redacts PI fields at any of the first three levels', () => {
    const { log, lines } = capture();
    log.info({ phone: '+8613800138000', user: { password: 'hunter2', profile: { nickname: 'Ming' } }, token: 'abc' }, 'registered');
    const out = lines.join('');
    for (const secret of ['13800138000', 'hunter2', 'Ming', '"abc"']) expect(out).not.toContain(secret);
    expect(JSON.parse(out)).toMatchObject({ phone: '[redacted]', user: { password: '[redacted]', profile: { nickname: '[redacted]' } }, service: 'identity' });
  });

  it('scrubs phone numbers, e-mail addresses and tokens out of free text and error messages', () => {
    const { log, lines } = capture();
    log.info('sms to 138 0013 8000 and +86 139-1234-5678 and 008613912345678, mail li@example.cn, Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1MSJ9.sig');
    log.error({ err: new Error('duplicate key phone: "+8613800138000"') }, 'failed');
    const out = lines.join('');
    for (const secret of ['13800138000', '0013 8000', '1234-5678', '13912345678', 'li@example.cn', 'eyJhbGci']) expect(out).not.toContain(secret);
    expect(out).toContain('[redacted-phone]');
  });

  it('keeps error codes readable while one-time codes stay redacted', () => {
    const { log, lines } = capture();
    log.error({ err: Object.assign(new Error('refused'), { code: 'PIPP_CONSENT_REQUIRED' }), code: '493021' }, 'failed');
    const out = JSON.parse(lines.join(''));
    expect(out.err).toMatchObject({ errorCode: 'PIPP_CONSENT_REQUIRED', message: 'refused' });
    expect(out.code).toBe('[redacted]');
  });

  it('scrubs full-width numbers, and PI in request paths, encoded or not (found by fuzzing)', () => {
    expect(scrub('policy clause １３９１２３４５６７８ and ＋８６ １３９ １２３４ ５６７８')).not.toMatch(/[0-9０-９]{11}|１３９/);
    const { log, lines } = capture();
    for (const url of ['/v1/identity/subjects/+8613911112222/profile', '/v1/identity/subjects/%2B8613911113333/profile', '/v1/x/subjects/li%40example.cn/profile?x=1']) {
      log.info({ req: { method: 'GET', url, ip: '203.0.113.9', headers: {} } }, 'request');
    }
    const out = lines.join('');
    for (const secret of ['13911112222', '13911113333', 'li@example.cn', 'li%40example.cn']) expect(out).not.toContain(secret);
  });

  it('leaves ordinary numbers, dates and ids alone', () => {
    expect(scrub('offset 1234 at 2026-11-29T10:00:00Z for request 8f0e6c5e-93b5-4f59-9d0b-2b1b3a0c4d11')).toBe(
      'offset 1234 at 2026-11-29T10:00:00Z for request 8f0e6c5e-93b5-4f59-9d0b-2b1b3a0c4d11');
  });

  it('keeps only the network part of client addresses', () => {
    expect(maskIp('203.0.113.77')).toBe('203.0.113.0/24');
    expect(maskIp('::ffff:203.0.113.77')).toBe('203.0.113.0/24');
    expect(maskIp('2001:db8:85a3:8d3:1319:8a2e:370:7348')).toBe('2001:db8:85a3::/48');
  });
});
