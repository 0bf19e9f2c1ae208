import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { randomUUID } from 'node:crypto';
import type { Config } from '../config.js';

/** One text message to a verified or to-be-verified number (E.164). */
export interface SmsRequest { to: string; text: string; purpose: string }

/**
 * Where one-time codes and security notices leave the platform. Implementations: `sink` records what
 * would be sent in the `sms_sink` collection (a real, inspectable "sent" log for development and
 * tests, purged after a day), `http` hands the message to a provider adapter over HTTP.
 */
export interface SmsProvider {
  send(message: SmsRequest): Promise<void>;
}

declare module 'fastify' {
  interface FastifyInstance {
    sms: SmsProvider;
  }
}

const DAY_MS = 86_400_000;

/** Chooses the SMS provider from config `SMS_PROVIDER` (`sink` default, `http` with `SMS_HTTP_URL`). */
export const smsPlugin = fp(async function sms(app: FastifyInstance, opts: { config: Config }) {
  const { config } = opts;
  if (config.SMS_PROVIDER === 'http') {
    if (!/^https?:\/\//.test(config.SMS_HTTP_URL)) throw new Error('SMS_HTTP_URL must be an http(s) URL when SMS_PROVIDER=http');
    const url = config.SMS_HTTP_URL;
    app.decorate('sms', {
      async send(message: SmsRequest) {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ id: randomUUID(), ...message }),
          signal: AbortSignal.timeout(5000),
        });
        if (!res.ok) throw new Error(`SMS provider answered HTTP ${res.status}`);
      },
    } satisfies SmsProvider);
  } else {
    app.decorate('sms', {
      async send(message: SmsRequest) {
        const now = new Date();
        await app.models.smsSink.create({ _id: randomUUID(), ...message, at: now, purgeAt: new Date(now.getTime() + DAY_MS) });
      },
    } satisfies SmsProvider);
  }
}, { name: 'identity-sms', dependencies: ['identity-models'] });
