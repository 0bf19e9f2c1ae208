// Real loopback receivers for the integration tests: an SMTP server (smtp-server) that parses what
// it receives, and HTTP receivers for push webhooks and the SMS/telephone providers that can be told
// to fail. Plus the incident app on the shared broker and database, and a way to produce events.
import { createEvent, topicFor, type EventPayload, type EventType, type ServiceName } from '@pipp/contracts';
import { loadConfig } from '@pipp/service-kit';
import { TestAuthority, dropDatabase, dropTopics, isolatedEnv, produceRaw } from '@pipp/testing';
import { simpleParser, type ParsedMail } from 'mailparser';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { buildApp } from '../src/app.js';
import { ConfigSchema } from '../src/config.js';

export interface SmtpSink { url: string; messages: ParsedMail[]; close(): Promise<void> }

/** A real SMTP server on loopback. Recipients whose address contains `reject` get a permanent 550. */
export async function startSmtp(): Promise<SmtpSink> {
  const messages: ParsedMail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onRcptTo(address, _session, cb) {
      if (address.address.includes('reject')) {
        const err = Object.assign(new Error('mailbox unavailable'), { responseCode: 550 });
        cb(err);
        return;
      }
      cb();
    },
    onData(stream, _session, cb) {
      simpleParser(stream).then((mail) => { messages.push(mail); cb(); }, cb);
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.server.address() as AddressInfo).port;
  return { url: `smtp://127.0.0.1:${port}`, messages, close: () => new Promise<void>((r) => server.close(() => r())) };
}

export interface HttpHit { path: string; headers: IncomingHttpHeaders; body: Record<string, unknown>; raw: string }
export interface HttpSink { url: string; hits: HttpHit[]; failures: Map<string, number>; close(): Promise<void> }

/** A real HTTP receiver on loopback. `failures.set(path, status)` makes that path answer `status`. */
export async function startHttpSink(): Promise<HttpSink> {
  const hits: HttpHit[] = [];
  const failures = new Map<string, number>();
  const server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => { raw += c; });
    req.on('end', () => {
      const path = req.url ?? '/';
      hits.push({ path, headers: req.headers, body: raw ? JSON.parse(raw) as Record<string, unknown> : {}, raw });
      const status = failures.get(path) ?? 202;
      res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, hits, failures, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

export const PSEUDONYM_KEY = 'test-pseudonym-key-0123456789abcdefghij';

/** The incident service on the shared infrastructure, isolated by database and topic prefix. */
export async function startIncident(authority: TestAuthority, extra: Record<string, string> = {}) {
  const env = isolatedEnv('incident', {
    AUTH_JWKS_URL: authority.jwksUrl, INCIDENT_PSEUDONYM_KEY: PSEUDONYM_KEY, DISPATCH_POLL_MS: '50',
    DELIVERY_RETRY_BASE_MS: '50', DELIVERY_TIMEOUT_MS: '3000', ...extra,
  });
  const app = await startWithEnv(env);
  return {
    app, env,
    async close() {
      await app.close();
      await dropDatabase(env.MONGO_DB!);
      await dropTopics(env.KAFKA_TOPIC_PREFIX!);
    },
  };
}

/** Another instance of the service on the same database and topics (`env` from `startIncident`). */
export async function startWithEnv(env: Record<string, string>) {
  const app = await buildApp(loadConfig(ConfigSchema, env));
  await app.ready();
  return app;
}

/** Produces a valid event of another service onto the real broker (as that service would). */
export async function produce<T extends EventType>(env: Record<string, string>, type: T, source: ServiceName, payload: EventPayload<T>, subject?: string) {
  const event = createEvent(type, { source, payload, ...(subject ? { subject } : {}) });
  await produceRaw(topicFor(type, env.KAFKA_TOPIC_PREFIX), [{ key: subject ?? event.id, value: JSON.stringify(event) }]);
  return event;
}

/** A complete incident body (policy 5.4.2 elements). */
export function incidentBody(subjectIds: string[], extra: Record<string, unknown> = {}) {
  return {
    title: 'Order database read by an unauthorized party',
    basicSituation: 'On 2026-11-20 a leaked staff credential was used to read order records between 02:00 and 03:10 UTC.',
    categories: ['phone-number', 'contact-channel'],
    possibleImpact: 'Phishing messages quoting your recent orders.',
    measuresTaken: ['Revoked the leaked credential', 'Rotated the database keys'],
    measuresPlanned: ['Hardware security keys for all staff by 2026-12-15'],
    advice: 'Never share one-time codes; hang up on callers who quote your orders and call us back.',
    remedies: 'One year of free identity monitoring; claims for losses through support.',
    severity: 'medium',
    subjectIds,
    ...extra,
  };
}
