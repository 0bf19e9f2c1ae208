import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { Agent } from 'undici';
import { PollingLoop } from '@pipp/service-kit';
import type { Config } from '../config.js';
import { retryDelayMs } from '../domain/backoff.js';
import { SIGNATURE_HEADER, signatureHeader } from '../domain/signature.js';
import { isAddressAllowed, parseAllowedHosts, validateWebhookUrl, type WebhookPolicy } from '../domain/webhook-url.js';
import type { Actor, NoticeDoc, RecipientDoc } from './models.js';

/** Refused before connecting: the target resolves to an address we never send to. */
export class BlockedAddressError extends Error {
  override readonly name = 'BlockedAddressError';
}

/**
 * A DNS lookup for the webhook agent that refuses host names resolving to private, link-local or (unless
 * allowed) loopback addresses. Connecting goes to the vetted address, so a DNS answer cannot change
 * between the check and the connection (no rebinding).
 */
export function guardedLookup(policy: Pick<WebhookPolicy, 'allowLoopback'>) {
  return (hostname: string, options: { all?: boolean; family?: number } | number, callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void) => {
    const opts = typeof options === 'number' ? { family: options } : options;
    dnsLookup(hostname, { ...opts, all: true }, (err, addresses) => {
      if (err) return callback(err, '');
      const list = addresses as LookupAddress[];
      const blocked = list.find((a) => !isAddressAllowed(a.address, policy));
      if (blocked || !list.length) return callback(new BlockedAddressError(`${hostname} resolves to an address that cannot receive notices`), '');
      if (opts.all) return callback(null, list);
      return callback(null, list[0]!.address, list[0]!.family);
    });
  };
}

/** The JSON body of a deletion notice (policy 4.2: "require them to delete it"). */
export interface DeletionNoticeBody {
  type: 'pipp.deletion-notice';
  noticeId: string;
  requestId: string;
  /** This recipient's pseudonym of the subject (the one sent with each share). */
  subjectRef: string;
  categories: string[];
  shareIds: string[];
  ground: string;
  clause: '4.2-recipients';
  requestedAt: string;
  /** Where to acknowledge (signed with the same secret) if the 2xx answer was not the acknowledgment. */
  acknowledgeUrl: string;
  attempt: number;
}

type ClosedListener = (notice: NoticeDoc) => Promise<void>;

/**
 * Delivers deletion notices to recipients' webhooks, durably: notices live in the database (status
 * `pending` with `nextAttemptAt`), a poll loop claims due ones with a short lease (so several instances,
 * or a restart, never lose or double-run one), POSTs the signed body with undici (no redirects, bounded
 * time, guarded DNS), and on a non-2xx answer or an error schedules the next attempt with exponential
 * backoff; after `WEBHOOK_MAX_ATTEMPTS` the notice is `failed` (still pending for the saga; an operator
 * may retry it). A 2xx answer, a signed acknowledgment call, or an operator's record closes it.
 */
export class NoticeDispatcher {
  private readonly agent: Agent;
  readonly policy: WebhookPolicy;
  private readonly delivery: PollingLoop;
  private readonly listeners: ClosedListener[] = [];

  constructor(private readonly app: FastifyInstance, private readonly config: Config, private readonly log: FastifyBaseLogger) {
    this.policy = { allowedHosts: parseAllowedHosts(config.WEBHOOK_ALLOWED_HOSTS), allowLoopback: config.WEBHOOK_ALLOW_LOOPBACK };
    this.agent = new Agent({
      connect: { lookup: guardedLookup(this.policy) as never, timeout: config.WEBHOOK_TIMEOUT_MS },
      headersTimeout: config.WEBHOOK_TIMEOUT_MS,
      bodyTimeout: config.WEBHOOK_TIMEOUT_MS,
      keepAliveTimeout: 10_000,
    });
    this.delivery = new PollingLoop({ intervalMs: config.WEBHOOK_POLL_MS, pass: () => this.pass(), log, what: 'notice delivery pass' });
  }

  /** Called with each notice once it is acknowledged (the erasure saga replies again). */
  onClosed(listener: ClosedListener): void {
    this.listeners.push(listener);
  }

  start(): void {
    this.delivery.start();
  }

  async stop(): Promise<void> {
    await this.delivery.stop();
    await this.agent.close();
  }

  /** Runs a delivery pass now (after notices were created). */
  kick(): void {
    this.delivery.kick();
  }

  /** Delivers every due notice (in small parallel groups). */
  private async pass(): Promise<void> {
    const { notices } = this.app.models;
    for (;;) {
      const now = new Date();
      const due = await notices.find({ status: 'pending', nextAttemptAt: { $lte: now }, leaseUntil: { $lte: now } }, { _id: 1 })
        .sort({ nextAttemptAt: 1 }).limit(16).lean();
      if (!due.length || this.delivery.stopped) return;
      await Promise.all(due.map((d) => this.attempt(d._id)));
      if (due.length < 16) return;
    }
  }

  /** Claims one notice with a lease, delivers it, and records the outcome. */
  private async attempt(id: string): Promise<void> {
    const { notices, recipients } = this.app.models;
    const now = new Date();
    const lease = new Date(now.getTime() + this.config.WEBHOOK_TIMEOUT_MS * 2 + 5000);
    const notice = await notices.findOneAndUpdate(
      { _id: id, status: 'pending', leaseUntil: { $lte: now } },
      { $set: { leaseUntil: lease } },
      { new: true },
    ).lean();
    if (!notice) return;
    const recipient = await recipients.findById(notice.recipientId).lean();
    const started = Date.now();
    let outcome: string;
    let httpStatus: number | undefined;
    let delivered = false;
    try {
      if (!recipient) throw new Error('recipient no longer registered');
      const result = await this.post(recipient, notice);
      httpStatus = result;
      delivered = result >= 200 && result < 300;
      outcome = delivered ? 'acknowledged' : `HTTP ${result}`;
    } catch (err) {
      outcome = (err as Error).name === 'BlockedAddressError' || (err as Error).message.startsWith('refused:')
        ? (err as Error).message
        : `delivery failed: ${(err as { code?: string }).code ?? (err as Error).name}`;
    }
    const entry = { at: new Date(), outcome, ...(httpStatus !== undefined ? { httpStatus } : {}), durationMs: Date.now() - started };
    const attempts = notice.attempts + 1;
    if (delivered) {
      const closed = await notices.findOneAndUpdate(
        { _id: id, status: 'pending' },
        { $set: { status: 'acknowledged', acknowledgedAt: new Date(), acknowledgedVia: 'webhook-2xx', leaseUntil: new Date(0) }, $inc: { attempts: 1 }, $push: { history: entry } },
        { new: true },
      ).lean();
      if (closed) await this.closed(closed);
      return;
    }
    const exhausted = attempts >= this.config.WEBHOOK_MAX_ATTEMPTS;
    const next = new Date(Date.now() + retryDelayMs(attempts, this.config.WEBHOOK_BACKOFF_MS, this.config.WEBHOOK_BACKOFF_MAX_MS));
    await notices.updateOne(
      { _id: id, status: 'pending' },
      { $set: { status: exhausted ? 'failed' : 'pending', nextAttemptAt: next, leaseUntil: new Date(0) }, $inc: { attempts: 1 }, $push: { history: entry } },
    );
    this.log.info({ noticeId: id, recipientId: notice.recipientId, attempts, outcome, exhausted }, 'deletion notice not acknowledged yet');
  }

  /** POSTs the signed notice; returns the HTTP status. */
  private async post(recipient: RecipientDoc, notice: NoticeDoc): Promise<number> {
    const check = validateWebhookUrl(recipient.webhook.url, this.policy);
    if (!check.ok) throw new Error(`refused: ${check.reason}`);
    const host = check.url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) && !isAddressAllowed(host, this.policy)) throw new BlockedAddressError(`${host} cannot receive notices`);
    const secret = recipient.webhook.secrets[0];
    if (!secret) throw new Error('refused: the recipient has no signing secret');
    const body: DeletionNoticeBody = {
      type: 'pipp.deletion-notice',
      noticeId: notice._id,
      requestId: notice.requestId,
      subjectRef: notice.subjectRef,
      categories: notice.categories,
      shareIds: notice.shareIds,
      ground: notice.ground,
      clause: '4.2-recipients',
      requestedAt: notice.createdAt.toISOString(),
      acknowledgeUrl: `/v1/data-sharing/public/deletion-notices/${encodeURIComponent(notice._id)}/acknowledgments`,
      attempt: notice.attempts + 1,
    };
    const raw = JSON.stringify(body);
    const res = await this.agent.request({
      origin: check.url.origin,
      path: `${check.url.pathname}${check.url.search}`,
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'pipp-data-sharing/1',
        'x-pipp-event': 'deletion-notice',
        'x-pipp-delivery-id': `${notice._id}#${notice.attempts + 1}`,
        'x-pipp-notice-id': notice._id,
        [SIGNATURE_HEADER]: signatureHeader(this.app.sealer.open(secret.sealed), raw),
      },
      body: raw,
    });
    await res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
    return res.statusCode;
  }

  /**
   * Closes a notice by an explicit acknowledgment (a signed call from the recipient, or an operator's
   * record); idempotent. Returns the notice, or null when unknown.
   */
  async acknowledge(id: string, via: 'signed-call' | 'operator', by: Actor): Promise<NoticeDoc | null> {
    const { notices } = this.app.models;
    const closed = await notices.findOneAndUpdate(
      { _id: id, status: { $in: ['pending', 'failed'] } },
      { $set: { status: 'acknowledged', acknowledgedAt: new Date(), acknowledgedVia: via, acknowledgedBy: by, leaseUntil: new Date(0) } },
      { new: true },
    ).lean();
    if (closed) {
      await this.closed(closed);
      return closed;
    }
    return notices.findById(id).lean();
  }

  /** Puts a failed notice back in the queue for immediate delivery (operator action). */
  async retry(id: string): Promise<NoticeDoc | null> {
    const doc = await this.app.models.notices.findOneAndUpdate(
      { _id: id, status: { $in: ['failed', 'pending'] } },
      { $set: { status: 'pending', attempts: 0, nextAttemptAt: new Date(), leaseUntil: new Date(0) } },
      { new: true },
    ).lean();
    this.kick();
    return doc;
  }

  private async closed(notice: NoticeDoc) {
    for (const l of this.listeners) {
      try {
        await l(notice);
      } catch (err) {
        this.log.error({ err, noticeId: notice._id }, 'could not record the acknowledgment in the erasure reply; the saga redelivery will');
      }
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    notices: NoticeDispatcher;
  }
}

export const noticesPlugin = fp(async function notices(app: FastifyInstance, opts: { config: Config }) {
  const dispatcher = new NoticeDispatcher(app, opts.config, app.log.child({ component: 'notices' }));
  app.decorate('notices', dispatcher);
  app.addHook('onReady', async () => dispatcher.start());
  app.addHook('preClose', async () => dispatcher.stop());
}, { name: 'pipp-ds-notices', dependencies: ['pipp-ds-models', 'pipp-ds-crypto'] });
