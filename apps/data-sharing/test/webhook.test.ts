// Webhook targets (no SSRF) and the signature scheme of messages exchanged with recipients.
import { describe, expect, it } from 'vitest';
import { signatureHeader, verifySignature } from '../src/domain/signature.js';
import { classifyAddress, hostAllowed, validateWebhookUrl } from '../src/domain/webhook-url.js';

const strict = { allowedHosts: ['hooks.partner.example', '*.recipient.example', '127.0.0.1', 'localhost', '10.0.0.8', '169.254.169.254', '[::1]'], allowLoopback: false };
const local = { ...strict, allowLoopback: true };

describe('webhook URL validation', () => {
  it('accepts https on an allowed host or sub-domain', () => {
    expect(validateWebhookUrl('https://hooks.partner.example/pipp', strict).ok).toBe(true);
    expect(validateWebhookUrl('https://eu.recipient.example/x', strict).ok).toBe(true);
    expect(hostAllowed('recipient.example', ['*.recipient.example'])).toBe(false);
    expect(hostAllowed('evilrecipient.example', ['*.recipient.example'])).toBe(false);
  });

  it('refuses hosts off the allow-list, plain http, credentials and fragments', () => {
    expect(validateWebhookUrl('https://other.example/x', strict)).toMatchObject({ ok: false, reason: expect.stringMatching(/allow-list/) });
    expect(validateWebhookUrl('http://hooks.partner.example/x', strict)).toMatchObject({ ok: false, reason: expect.stringMatching(/https/) });
    expect(validateWebhookUrl('https://u:p@hooks.partner.example/x', strict)).toMatchObject({ ok: false, reason: expect.stringMatching(/credentials/) });
    expect(validateWebhookUrl('https://hooks.partner.example/x#y', strict).ok).toBe(false);
    expect(validateWebhookUrl('not a url', strict).ok).toBe(false);
  });

  it('refuses internal addresses even when listed: private, link-local (metadata), and loopback unless local config allows it', () => {
    expect(validateWebhookUrl('https://10.0.0.8/x', strict)).toMatchObject({ ok: false, reason: expect.stringMatching(/private/) });
    expect(validateWebhookUrl('https://169.254.169.254/latest', strict)).toMatchObject({ ok: false, reason: expect.stringMatching(/link-local/) });
    expect(validateWebhookUrl('https://127.0.0.1/x', strict)).toMatchObject({ ok: false, reason: expect.stringMatching(/loopback/) });
    expect(validateWebhookUrl('https://localhost/x', strict).ok).toBe(false);
    expect(validateWebhookUrl('https://[::1]/x', strict).ok).toBe(false);
    expect(validateWebhookUrl('http://127.0.0.1:8080/x', local).ok).toBe(true);
    expect(validateWebhookUrl('http://[::1]:8080/x', local).ok).toBe(true);
    expect(validateWebhookUrl('http://10.0.0.8/x', local).ok).toBe(false);
  });

  it('classifies addresses, including IPv4-mapped IPv6', () => {
    expect(classifyAddress('8.8.8.8')).toBe('public');
    expect(classifyAddress('192.168.1.1')).toBe('private');
    expect(classifyAddress('100.64.0.1')).toBe('private');
    expect(classifyAddress('fd00::1')).toBe('private');
    expect(classifyAddress('fe80::1')).toBe('link-local');
    expect(classifyAddress('::ffff:127.0.0.1')).toBe('loopback');
    expect(classifyAddress('::ffff:10.0.0.1')).toBe('private');
    expect(classifyAddress('0.0.0.0')).toBe('other');
    expect(classifyAddress('224.0.0.1')).toBe('other');
  });
});

describe('signatures', () => {
  const body = JSON.stringify({ noticeId: 'n1' });
  const now = 1_800_000_000;

  it('verifies a signature made with the same secret within the window', () => {
    expect(verifySignature(signatureHeader('s3cret', body, now), body, ['s3cret'], now + 10, 300)).toEqual({ ok: true });
  });

  it('refuses another secret, a changed body, an old timestamp and malformed headers', () => {
    const h = signatureHeader('s3cret', body, now);
    expect(verifySignature(h, body, ['other'], now, 300)).toMatchObject({ ok: false, reason: expect.stringMatching(/match/) });
    expect(verifySignature(h, `${body} `, ['s3cret'], now, 300).ok).toBe(false);
    expect(verifySignature(h, body, ['s3cret'], now + 301, 300)).toMatchObject({ ok: false, reason: expect.stringMatching(/window/) });
    expect(verifySignature(undefined, body, ['s3cret'], now, 300).ok).toBe(false);
    expect(verifySignature('v1=abc', body, ['s3cret'], now, 300)).toMatchObject({ ok: false, reason: expect.stringMatching(/malformed/) });
  });

  it('accepts either secret during a rotation', () => {
    expect(verifySignature(signatureHeader('old', body, now), body, ['new', 'old'], now, 300).ok).toBe(true);
  });
});
