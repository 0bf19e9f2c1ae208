// A real HTTP receiver on 127.0.0.1 standing in for a recipient's webhook endpoint: it records every
// request with its headers and raw body, checks our signature with the recipient's secret, and answers
// with the status a test scripts per path.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifySignature } from '../src/domain/signature.js';

export interface Received {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: Record<string, unknown>;
  signatureValid: boolean;
  answered: number;
}

export class Receiver {
  readonly received: Received[] = [];
  private server!: Server;
  private readonly secrets = new Map<string, string>();
  private readonly scripts = new Map<string, number[]>();
  port = 0;

  static async start(): Promise<Receiver> {
    const r = new Receiver();
    r.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const path = req.url ?? '/';
        const secret = r.secrets.get(path);
        const signatureValid = Boolean(secret) && verifySignature(req.headers['x-pipp-signature'] as string | undefined, body, [secret!], Math.floor(Date.now() / 1000), 300).ok;
        const script = r.scripts.get(path) ?? [];
        const status = !signatureValid ? 401 : (script.length > 1 ? script.shift()! : script[0] ?? 200);
        let json: Record<string, unknown> = {};
        try { json = JSON.parse(body) as Record<string, unknown>; } catch { /* recorded as is */ }
        r.received.push({ path, headers: req.headers, body, json, signatureValid, answered: status });
        res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((ok) => r.server.listen(0, '127.0.0.1', ok));
    r.port = (r.server.address() as AddressInfo).port;
    return r;
  }

  url(path: string) { return `http://127.0.0.1:${this.port}${path}`; }
  /** The secret to verify requests on `path` with. */
  expect(path: string, secret: string) { this.secrets.set(path, secret); }
  /** Statuses to answer on `path`, in order; the last one repeats. */
  answer(path: string, ...statuses: number[]) { this.scripts.set(path, statuses); }
  on(path: string) { return this.received.filter((r) => r.path === path); }

  async close() {
    this.server.closeAllConnections();
    await new Promise<void>((ok) => this.server.close(() => ok()));
  }
}
