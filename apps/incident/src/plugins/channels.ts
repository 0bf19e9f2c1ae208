import type { Channel } from '@pipp/contracts';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import nodemailer, { type Transporter } from 'nodemailer';
import { createHmac, randomUUID } from 'node:crypto';
import { request } from 'undici';
import type { Config } from '../config.js';
import { pushEndpointProblem } from '../domain/endpoint.js';
import type { RenderedNotice } from '../domain/notice.js';

/** A failed delivery attempt. `permanent`: retrying the same channel will not help (fall back at once). */
export class DeliveryFailure extends Error {
  override readonly name = 'DeliveryFailure';
  constructor(message: string, readonly permanent: boolean) {
    super(message);
  }
}

/** What a sender needs besides the address and the rendered notice. */
export interface SendContext { deliveryId: string; notificationId: string; subjectId: string; kind: string }

/**
 * One notification channel (policy 5.4.2: mail, letter, telephone, push; plus SMS). `send` resolves
 * with a provider reference when the provider accepted the message.
 * @throws DeliveryFailure
 */
export interface ChannelSender {
  send(address: string, notice: RenderedNotice, ctx: SendContext): Promise<{ ref?: string }>;
  close?(): Promise<void>;
}

/** E-mail through nodemailer over SMTP (config SMTP_URL, MAIL_FROM). SMTP 5xx answers are permanent. */
export class EmailSender implements ChannelSender {
  private readonly transport: Transporter;
  constructor(url: string, private readonly from: string, timeoutMs: number) {
    this.transport = nodemailer.createTransport(`${url}${url.includes('?') ? '&' : '?'}pool=true&maxConnections=4`, {
      connectionTimeout: timeoutMs, greetingTimeout: timeoutMs, socketTimeout: timeoutMs,
    } as never);
  }

  async send(address: string, notice: RenderedNotice, ctx: SendContext) {
    try {
      const info = await this.transport.sendMail({
        from: this.from,
        to: address,
        subject: notice.subject,
        text: notice.text,
        headers: { 'X-PIPP-Notification': ctx.notificationId, 'X-PIPP-Kind': ctx.kind },
      });
      return { ref: String(info.messageId) };
    } catch (err) {
      const code = (err as { responseCode?: number }).responseCode;
      throw new DeliveryFailure(`smtp: ${code ?? (err as { code?: string }).code ?? 'error'}`, code !== undefined && code >= 500);
    }
  }

  async close() {
    this.transport.close();
  }
}

/**
 * POSTs JSON to an HTTP endpoint: the SMS and telephone providers (config SMS_PROVIDER_URL,
 * TELEPHONE_PROVIDER_URL) and push webhooks (the subject's endpoint). 2xx accepted; 408, 425, 429 and
 * 5xx and network errors are worth retrying; other 4xx are permanent. Push bodies are signed with
 * HMAC-SHA256 (header `x-pipp-signature: sha256=<hex>`) when PUSH_SIGNING_SECRET is set.
 */
export class HttpSender implements ChannelSender {
  constructor(private readonly opts: {
    channel: Channel;
    /** Fixed provider URL; absent for push, where the address is the URL. */
    url?: string;
    /** Push: refuse private and non-https endpoints (production). */
    production?: boolean;
    token?: string;
    signingSecret?: string;
    timeoutMs: number;
  }) {}

  async send(address: string, notice: RenderedNotice, ctx: SendContext) {
    const url = this.opts.url ?? address;
    if (!this.opts.url) {
      const problem = pushEndpointProblem(url, this.opts.production ?? false);
      if (problem) throw new DeliveryFailure(`${this.opts.channel}: endpoint refused (${problem})`, true);
    }
    const body = JSON.stringify(this.opts.url
      ? { to: address, channel: this.opts.channel, text: notice.text, subject: notice.subject, reference: ctx.deliveryId }
      : { notificationId: ctx.notificationId, kind: ctx.kind, title: notice.subject, text: notice.text, sections: notice.sections, reference: ctx.deliveryId });
    const headers: Record<string, string> = { 'content-type': 'application/json', 'x-pipp-reference': ctx.deliveryId };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    if (this.opts.signingSecret) headers['x-pipp-signature'] = `sha256=${createHmac('sha256', this.opts.signingSecret).update(body).digest('hex')}`;
    let status: number;
    try {
      const res = await request(url, { method: 'POST', headers, body, headersTimeout: this.opts.timeoutMs, bodyTimeout: this.opts.timeoutMs, signal: AbortSignal.timeout(this.opts.timeoutMs) });
      status = res.statusCode;
      await res.body.dump();
    } catch (err) {
      throw new DeliveryFailure(`${this.opts.channel}: ${(err as { code?: string }).code ?? (err as Error).name}`, false);
    }
    if (status >= 200 && status < 300) return { ref: `${this.opts.channel}:${ctx.deliveryId}` };
    const transient = status >= 500 || [408, 425, 429].includes(status);
    throw new DeliveryFailure(`${this.opts.channel}: HTTP ${status}`, !transient);
  }
}

/** Local stand-in for the SMS or telephone provider: records the message in `provider_sink`. */
export class SinkSender implements ChannelSender {
  constructor(private readonly channel: Channel, private readonly app: FastifyInstance) {}

  async send(address: string, notice: RenderedNotice, ctx: SendContext) {
    const id = randomUUID();
    await this.app.models.sink.create({ _id: id, channel: this.channel, subjectId: ctx.subjectId, to: address, text: notice.text, at: new Date() });
    return { ref: `sink:${id}` };
  }
}

/** Letters: a record in the postal queue (`letters`), printed and posted by the mail room. */
export class LetterSender implements ChannelSender {
  constructor(private readonly app: FastifyInstance) {}

  async send(address: string, notice: RenderedNotice, ctx: SendContext) {
    const _id = `${ctx.notificationId}:${ctx.subjectId}`;
    await this.app.models.letters.updateOne(
      { _id },
      { $setOnInsert: { _id, notificationId: ctx.notificationId, subjectId: ctx.subjectId, address, content: notice.text, status: 'queued', queuedAt: new Date() } },
      { upsert: true },
    );
    return { ref: `letter:${_id}` };
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The sender of each channel. */
    channels: Record<Channel, ChannelSender>;
  }
}

/** Decorates `app.channels` from the configuration; closes the SMTP pool on close. */
export const channelsPlugin = fp(async function channels(app: FastifyInstance, opts: { config: Config }) {
  const c = opts.config;
  const token = c.PROVIDER_TOKEN || undefined;
  const senders: Record<Channel, ChannelSender> = {
    email: new EmailSender(c.SMTP_URL, c.MAIL_FROM, c.DELIVERY_TIMEOUT_MS),
    sms: c.SMS_PROVIDER_URL ? new HttpSender({ channel: 'sms', url: c.SMS_PROVIDER_URL, token, timeoutMs: c.DELIVERY_TIMEOUT_MS }) : new SinkSender('sms', app),
    telephone: c.TELEPHONE_PROVIDER_URL ? new HttpSender({ channel: 'telephone', url: c.TELEPHONE_PROVIDER_URL, token, timeoutMs: c.DELIVERY_TIMEOUT_MS }) : new SinkSender('telephone', app),
    push: new HttpSender({ channel: 'push', signingSecret: c.PUSH_SIGNING_SECRET || undefined, timeoutMs: c.DELIVERY_TIMEOUT_MS, production: c.NODE_ENV === 'production' }),
    letter: new LetterSender(app),
  };
  app.decorate('channels', senders);
  app.addHook('onClose', async () => {
    await Promise.all(Object.values(senders).map((s) => s.close?.()));
  });
}, { name: 'incident-channels', dependencies: ['incident-models'] });
