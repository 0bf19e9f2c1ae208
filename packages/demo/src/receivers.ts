// The outside world the demo plays: a real SMTP server standing in for the subjects' mailboxes, and a
// real HTTP server standing in for the recipients' webhook endpoints. Both on loopback only.
import { simpleParser } from 'mailparser';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/** A received mail: envelope recipients, subject line and plain text. */
export interface Mail { to: string[]; subject: string; text: string }

export interface MailReceiver {
  /** smtp://127.0.0.1:<port> */
  url: string;
  mails: Mail[];
  close(): Promise<void>;
}

/**
 * Starts a real SMTP server (smtp-server) on 127.0.0.1:`port` (0: a free one) that accepts every
 * message and keeps it in memory. Rejects with EADDRINUSE when the port is taken.
 */
export async function startMailReceiver(port = 0): Promise<MailReceiver> {
  const mails: Mail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, cb) {
      simpleParser(stream).then((parsed) => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address.toLowerCase()), subject: parsed.subject ?? '', text: parsed.text ?? '' });
        cb();
      }, cb);
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const bound = (server.server.address() as AddressInfo).port;
  return { url: `smtp://127.0.0.1:${bound}`, mails, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** One request a webhook endpoint received: its path, headers and JSON body. */
export interface WebhookHit { path: string; headers: Record<string, string | string[] | undefined>; body: Record<string, unknown> }

export interface WebhookReceiver {
  /** http://127.0.0.1:<port> */
  url: string;
  hits: WebhookHit[];
  close(): Promise<void>;
}

/** Starts an HTTP server on a free loopback port that answers 202 to every POST and records it. */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const hits: WebhookHit[] = [];
  const server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => { raw += c; });
    req.on('end', () => {
      let body: Record<string, unknown> = {};
      try { body = raw ? JSON.parse(raw) as Record<string, unknown> : {}; } catch { /* recorded as empty */ }
      hits.push({ path: req.url ?? '/', headers: req.headers, body });
      res.writeHead(202, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, hits, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}
