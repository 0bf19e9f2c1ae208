// The HTTP edge every service shares: one error shape, field-level validation messages, no 500 for
// bad input, no internals in 5xx, request ids echoed. Pure Fastify: no broker or database involved.
import { ErrorResponseSchema, VisibleText, compile } from '@pipp/contracts';
import { Type } from '@sinclair/typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFastify, errorHandlerPlugin, Errors, unacceptableValue, loadConfig, defineConfig, type App } from '../src/index.js';

const isErrorShape = compile(ErrorResponseSchema);
let app: App;

beforeAll(async () => {
  const config = loadConfig(defineConfig({}, { PORT: 0, MONGO_DB: 'x' }), {
    MONGO_URL: 'mongodb://127.0.0.1:1', KAFKA_BROKERS: '127.0.0.1:1', LOG_LEVEL: 'silent',
  });
  app = createFastify({ service: 'consent', config, bodyLimit: 1024 });
  await app.register(errorHandlerPlugin);
  app.post('/things', {
    schema: {
      body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 20 }), count: Type.Integer({ minimum: 0 }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ name: Type.String() }) },
    },
  }, async (request) => ({ name: request.body.name, secret: 'never serialized' }));
  app.get('/versions/:v', { schema: { params: Type.Object({ v: Type.Integer({ minimum: 1 }) }) } }, async (request) => request.params);
  app.post('/open', { schema: { body: Type.Object({ data: Type.Unknown() }, { additionalProperties: false }) } }, async (request) => request.body);
  app.post('/titles', { schema: { body: Type.Object({ title: VisibleText(20) }, { additionalProperties: false }) } }, async (request) => request.body);
  app.post('/states', {
    schema: { body: Type.Object({ state: Type.Union([Type.Literal('granted'), Type.Literal('withdrawn')]), kind: Type.Literal('purpose') }, { additionalProperties: false }) },
  }, async () => ({}));
  app.patch('/typed', {
    schema: {
      body: Type.Object({ note: Type.Optional(Type.Union([Type.Null(), Type.String()])), count: Type.Optional(Type.Integer()) }, { additionalProperties: false }),
      querystring: Type.Object({ n: Type.Optional(Type.Integer()), tags: Type.Optional(Type.Array(Type.String())) }, { additionalProperties: false }),
    },
  }, async (request) => ({ body: request.body, query: request.query }));
  app.post('/when', {
    schema: {
      body: Type.Object({ at: Type.String({ format: 'date-time' }) }, { additionalProperties: false }),
      querystring: Type.Object({ since: Type.Optional(Type.String({ format: 'date-time' })) }, { additionalProperties: false }),
    },
  }, async (request) => ({ at: new Date(request.body.at).toISOString() }));
  app.get('/boom', async () => { throw new Error('database password is hunter2 at 10.0.0.5'); });
  app.get('/items/:id', async () => ({}));
  app.get('/refused', async () => { throw Errors.forbidden('Sharing needs your consent', { clause: '3.1.2' }); });
  app.get('/upstream/:status', async (request) => {
    const err = new Error('connect ECONNREFUSED 10.0.0.7:4002') as Error & { statusCode: number; retryAfter: number };
    err.statusCode = Number((request.params as { status: string }).status);
    err.retryAfter = 3;
    throw err;
  });
  await app.ready();
});
afterAll(() => app.close());

const post = (payload: string, contentType = 'application/json') =>
  app.inject({ method: 'POST', url: '/things', headers: { 'content-type': contentType }, payload });

describe('one error shape', () => {
  it('names each invalid field and why', async () => {
    const res = await post(JSON.stringify({ name: '', count: -1 }));
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(isErrorShape(body)).toBe(true);
    expect(body.code).toBe('PIPP_VALIDATION');
    expect(body.details).toEqual(expect.arrayContaining([
      expect.objectContaining({ path: '/body/name' }),
      expect.objectContaining({ path: '/body/count' }),
    ]));
    expect(body.requestId).toBe(res.headers['x-request-id']);
  });

  it('says once which values a field admits, not once per admitted value', async () => {
    const res = await app.inject({ method: 'POST', url: '/states', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ state: 'maybe', kind: 'x' }) });
    expect(res.statusCode).toBe(400);
    expect(res.json().details).toEqual([
      { path: '/body/state', message: 'must be one of: granted, withdrawn' },
      { path: '/body/kind', message: 'must be purpose' },
    ]);
    expect(res.json().message).toBe('/body/state must be one of: granted, withdrawn; /body/kind must be purpose');
  });

  it('rejects unknown properties, operator keys and prototype keys instead of passing them on', async () => {
    for (const payload of [
      JSON.stringify({ name: 'a', count: 1, extra: true }),
      JSON.stringify({ name: { $gt: '' }, count: 1 }),
      JSON.stringify({ name: 'a', count: 1, $where: 'sleep(1000)' }),
      '{"name":"a","count":1,"__proto__":{"isAdmin":true}}',
      '{"name":"a","count":1,"constructor":{"prototype":{"isAdmin":true}}}',
    ]) {
      const res = await post(payload);
      expect(res.statusCode, payload).toBe(400);
      expect(isErrorShape(res.json()), payload).toBe(true);
    }
  });

  it('validates a JSON body as sent, without type coercion; query strings are still read as numbers and lists', async () => {
    const patch = (payload: unknown, query = '') => app.inject({ method: 'PATCH', url: `/typed${query}`, headers: { 'content-type': 'application/json' }, payload: JSON.stringify(payload) });
    // Each of these was coerced before: false, 0 and "" to null (a removal), ["x"] to a string, "5" to 5, 123 to "123".
    for (const payload of [{ note: false }, { note: 0 }, { note: ['x'] }, { note: 123 }, { note: true }, { count: '5' }, { count: [5] }]) {
      const res = await patch(payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(isErrorShape(res.json())).toBe(true);
    }
    expect((await patch({ note: null, count: 5 })).json()).toEqual({ body: { note: null, count: 5 }, query: {} });
    expect((await patch({ note: '' })).json().body).toEqual({ note: '' });
    expect((await patch({}, '?n=7&tags=a')).json().query).toEqual({ n: 7, tags: ['a'] });
    expect((await patch({}, '?n=seven')).statusCode).toBe(400);
    // An integer parameter is written in decimal digits: Ajv took 0x10 as 16, 1e3 as 1000, 1.0 as 1.
    for (const n of ['0x10', '1e3', '1.0', '%201', '0b1', 'Infinity']) {
      expect((await patch({}, `?n=${n}`)).json(), n).toMatchObject({ statusCode: 400, details: [{ path: '/querystring/n', message: 'must be an integer written in decimal digits' }] });
    }
    expect((await patch({}, '?n=-12')).json().query).toEqual({ n: -12 });
    expect((await app.inject({ url: '/versions/0x10' })).json()).toMatchObject({ statusCode: 400, details: [{ path: '/params/v' }] });
    expect((await app.inject({ url: '/versions/16' })).json()).toEqual({ v: 16 });
  });

  it('refuses a number JSON cannot carry (1e400 parses to Infinity, stored as such, answered as null), naming it', async () => {
    const open = (raw: string) => app.inject({ method: 'POST', url: '/open', headers: { 'content-type': 'application/json' }, payload: raw });
    for (const [raw, path] of [['{"data":{"n":1e400}}', '/body/data/n'], ['{"data":[1, -1e999]}', '/body/data/1'], ['{"data":1e309}', '/body/data']] as const) {
      const res = await open(raw);
      expect(res.statusCode, raw).toBe(400);
      expect(res.json()).toMatchObject({ code: 'PIPP_VALIDATION', details: [{ path, message: expect.stringMatching(/overflows/) }] });
    }
    expect((await open('{"data":{"n":1.7e308,"m":-5e-324}}')).json()).toEqual({ data: { n: 1.7e308, m: -5e-324 } });
  });

  it('accepts as a date-time only a time JavaScript can hold: a leap second is a 400, not a 500 later', async () => {
    const when = (at: string, since = '') => app.inject({ method: 'POST', url: `/when${since ? `?since=${since}` : ''}`, payload: { at } });
    expect((await when('2026-12-31T23:59:59Z')).json()).toEqual({ at: '2026-12-31T23:59:59.000Z' });
    for (const [at, since] of [['2026-12-31T23:59:60Z', ''], ['2026-12-31T23:59:59Z', '2026-12-31T23:59:60Z'], ['2026-02-30T10:00:00Z', '']]) {
      const res = await when(at!, since);
      expect(res.statusCode, `${at} ${since}`).toBe(400);
      expect(res.json()).toMatchObject({ code: 'PIPP_VALIDATION', message: expect.stringMatching(/date-time/) });
    }
  });

  it('refuses control characters, direction overrides and unpaired surrogates in any body or query field, naming it', async () => {
    const typed = (payload: unknown, query = '') => app.inject({ method: 'PATCH', url: `/typed${query}`, payload: payload as object });
    const cases: [unknown, string, string][] = [
      [{ note: 'a\u0000b' }, '', '/body/note'],
      [{ note: 'Acme\u202eLtd' }, '', '/body/note'],
      [{ note: 'x\udc00' }, '', '/body/note'],
      [{ note: '\ud83dy' }, '', '/body/note'],
      [{ note: 'bell\u0007' }, '', '/body/note'],
      [{}, '?tags=ok&tags=%E2%80%AE', '/querystring/tags/1'],
      // What a body that is not valid UTF-8 decodes to (it was stored as "��").
      [{ note: 'Bad \ufffd\ufffd utf8' }, '', '/body/note'],
    ];
    for (const [payload, query, path] of cases) {
      const res = await typed(payload, query);
      expect(res.statusCode, JSON.stringify(payload) + query).toBe(400);
      expect(res.json()).toMatchObject({ code: 'PIPP_VALIDATION', details: [{ path, message: expect.stringMatching(/control characters/) }] });
    }
    // A hidden character in a key is refused and never echoed (the answer carried the NUL back).
    const key = await typed({ ['no\u0000te']: 'x' });
    expect(key.statusCode).toBe(400);
    expect(key.json().message).not.toContain('\u0000');
    expect(key.json().message).toContain('no\\u0000te');
    expect(unacceptableValue({ a: [{ 'b/\u0000': 'x' }] }, '/body')?.path).toBe('/body/a/0/b~1\\u0000');
    // A text a person reads shows something (VisibleText): not only spaces or zero-width characters.
    for (const title of ['   ', '\u200b', '\u3000\u200d', '\ufeff', '\u3164', '\u2800', '\u034f', '\u115f\u1160']) {
      expect((await app.inject({ method: 'POST', url: '/titles', payload: { title } })).json(), JSON.stringify(title))
        .toMatchObject({ statusCode: 400, details: [{ path: '/body/title', message: 'must show something: not only spaces or invisible characters' }] });
    }
    expect((await app.inject({ method: 'POST', url: '/titles', payload: { title: ' x ' } })).statusCode).toBe(200);
    // Line breaks, tabs, emoji (paired surrogates), other scripts and their joiners stay allowed.
    for (const note of ['two\nlines\tand a tab\r\n', 'ok 😀', 'فارسی\u200cمتن', '中文 ü']) {
      expect((await typed({ note })).json(), note).toEqual({ body: { note }, query: {} });
    }
  });

  it('answers malformed JSON, empty bodies, oversized bodies and other media types with a 4xx', async () => {
    const cases: [string, string, number, string][] = [
      ['{"name": "a",', 'application/json', 400, 'PIPP_VALIDATION'],
      ['', 'application/json', 400, 'PIPP_VALIDATION'],
      [JSON.stringify({ name: 'a'.repeat(2000), count: 1 }), 'application/json', 413, 'PIPP_PAYLOAD_TOO_LARGE'],
      ['name=a&count=1', 'application/x-www-form-urlencoded', 415, 'PIPP_UNSUPPORTED_MEDIA_TYPE'],
    ];
    for (const [payload, type, status, code] of cases) {
      const res = await post(payload, type);
      expect(res.statusCode, `${type} ${payload.slice(0, 20)}`).toBe(status);
      expect(res.json().code).toBe(code);
      expect(isErrorShape(res.json())).toBe(true);
    }
  });

  it('validates bodies whatever the spelling of the JSON content type', async () => {
    for (const type of ['APPLICATION/JSON', 'application/json; charset=utf-8', 'application/json\t', ' application/json']) {
      const res = await post(JSON.stringify({ name: 'a', count: 1, extra: 1 }), type);
      expect(res.statusCode, JSON.stringify(type)).toBeGreaterThanOrEqual(400);
      expect(res.statusCode, JSON.stringify(type)).toBeLessThan(500);
    }
  });

  it('never serializes fields outside the response schema', async () => {
    const res = await post(JSON.stringify({ name: 'a', count: 1 }));
    expect(res.json()).toEqual({ name: 'a' });
  });

  it('keeps internals out of 5xx answers', async () => {
    const res = await app.inject({ url: '/boom' });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toMatchObject({ code: 'PIPP_INTERNAL', message: 'Internal error; quote the request id to support' });
    expect(res.body).not.toMatch(/hunter2|10\.0\.0\.5/);
  });

  it('answers upstream failures (502, 504) with their own code, a fixed message and Retry-After', async () => {
    for (const [status, code] of [[502, 'PIPP_BAD_GATEWAY'], [504, 'PIPP_UPSTREAM_TIMEOUT']] as const) {
      const res = await app.inject({ url: `/upstream/${status}` });
      expect(res.statusCode).toBe(status);
      expect(res.json()).toMatchObject({ code });
      expect(res.headers['retry-after']).toBe('3');
      expect(res.body).not.toMatch(/ECONNREFUSED|10\.0\.0\.7/);
      expect(isErrorShape(res.json())).toBe(true);
    }
  });

  it('carries the policy clause behind a refusal', async () => {
    const res = await app.inject({ url: '/refused' });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ code: 'PIPP_FORBIDDEN', clause: '3.1.2', message: 'Sharing needs your consent' });
  });

  it('answers a URL that cannot be decoded with a 400 in the same shape', async () => {
    for (const url of ['/items/%E0%A4%A', '/refused/%E0%A4%A', '/items/%']) {
      const res = await app.inject({ url });
      expect(res.statusCode, url).toBeGreaterThanOrEqual(400);
      expect(res.statusCode, url).toBeLessThan(500);
      expect(isErrorShape(res.json()), url).toBe(true);
    }
    // In the query string too (the gateway's proxy answered 500 to `?x=%`; services read `%FF` as text).
    for (const url of ['/typed?n=%', '/typed?tags=a%FF', '/typed?tags=%E0%A4%A']) {
      const res = await app.inject({ method: 'PATCH', url, payload: {} });
      expect(res.json(), url).toMatchObject({ statusCode: 400, code: 'PIPP_VALIDATION', details: [{ path: '/querystring' }] });
    }
    expect((await app.inject({ method: 'PATCH', url: '/typed?tags=%E4%B8%AD', payload: {} })).json()).toEqual({ body: {}, query: { tags: ['中'] } });
  });

  it('answers unknown routes with the same shape', async () => {
    const res = await app.inject({ url: '/nope?phone=13800138000' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 'PIPP_NOT_FOUND', message: 'Route GET /nope not found' });
  });

  it('keeps a well-formed incoming request id and replaces a malformed one', async () => {
    const kept = await app.inject({ url: '/refused', headers: { 'x-request-id': 'abc-123' } });
    expect(kept.headers['x-request-id']).toBe('abc-123');
    const replaced = await app.inject({ url: '/refused', headers: { 'x-request-id': 'bad id\n<script>' } });
    expect(replaced.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    // A request id is on every log line: one shaped like a phone number is replaced too.
    const phone = await app.inject({ url: '/refused', headers: { 'x-request-id': '8613911119999' } });
    expect(phone.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('slow clients', () => {
  it('answers 408 and closes the connection of a client that never finishes its request (REQUEST_TIMEOUT_MS)', async () => {
    const { connect } = await import('node:net');
    const config = loadConfig(defineConfig({}, { PORT: 0, MONGO_DB: 'x' }), {
      MONGO_URL: 'mongodb://127.0.0.1:1', KAFKA_BROKERS: '127.0.0.1:1', LOG_LEVEL: 'silent', REQUEST_TIMEOUT_MS: '1000',
    });
    const slow = createFastify({ service: 'consent', config });
    slow.post('/things', async () => ({ ok: true }));
    await slow.listen({ host: '127.0.0.1', port: 0 });
    try {
      const { port } = slow.server.address() as { port: number };
      const socket = connect(port, '127.0.0.1');
      const started = Date.now();
      let received = '';
      socket.on('data', (d) => { received += d.toString(); });
      // Headers promise 100 bytes of body; only one ever comes.
      socket.write('POST /things HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{');
      await new Promise((resolve) => socket.once('close', resolve));
      const ms = Date.now() - started;
      expect(received).toMatch(/^HTTP\/1\.1 408/);
      expect(JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4))).toMatchObject({ statusCode: 408, code: 'PIPP_REQUEST_TIMEOUT' });
      expect(ms).toBeGreaterThanOrEqual(900);
      expect(ms).toBeLessThan(5000); // the timeout plus Node's 1 s check interval, with room for a busy machine
    } finally {
      await slow.close();
    }
  });
});

describe('requests the HTTP parser refuses', () => {
  it('answers them in the one error shape and closes the connection', async () => {
    const { connect } = await import('node:net');
    const config = loadConfig(defineConfig({}, { PORT: 0, MONGO_DB: 'x' }), { MONGO_URL: 'mongodb://127.0.0.1:1', KAFKA_BROKERS: '127.0.0.1:1', LOG_LEVEL: 'silent' });
    const server = createFastify({ service: 'consent', config });
    await server.register(errorHandlerPlugin);
    server.get('/things', async () => ({ ok: true }));
    await server.listen({ host: '127.0.0.1', port: 0 });
    const { port } = server.server.address() as { port: number };
    const send = (raw: string) => new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      let received = '';
      socket.on('data', (d) => { received += d.toString(); });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(received));
      socket.write(raw);
    });
    try {
      const cases: [string, number, string][] = [
        ['GARBAGE\r\n\r\n', 400, 'PIPP_BAD_REQUEST'],
        ['GET /things HTTP/9.9\r\nHost: x\r\n\r\n', 400, 'PIPP_BAD_REQUEST'],
        ['POST /things HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}', 400, 'PIPP_BAD_REQUEST'],
        [`GET /things HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'PIPP_HEADERS_TOO_LARGE'],
        ['GET /things HTTP/1.1\r\n\r\n', 400, 'PIPP_BAD_REQUEST'], // no Host (Node answered a bare 400 itself)
      ];
      for (const [raw, status, code] of cases) {
        const received = await send(raw);
        expect(received, raw.slice(0, 40)).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
        const body = JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4));
        expect(body).toEqual({ statusCode: status, code, error: expect.any(String), message: expect.any(String), requestId: expect.any(String) });
        expect(received).toContain(`x-request-id: ${body.requestId as string}`);
        expect(received.toLowerCase()).toContain(`x-pipp-error-code: ${code.toLowerCase()}`);
      }
    } finally {
      await server.close();
    }
  });
});

describe('stopping', () => {
  it('answers a keep-alive request in flight at close with Connection: close, so the close does not wait on the client', async () => {
    const { Agent, request } = await import('node:http');
    const config = loadConfig(defineConfig({}, { PORT: 0, MONGO_DB: 'x' }), {
      MONGO_URL: 'mongodb://127.0.0.1:1', KAFKA_BROKERS: '127.0.0.1:1', LOG_LEVEL: 'silent',
    });
    const server = createFastify({ service: 'consent', config });
    server.get('/slow', async () => { await new Promise((r) => setTimeout(r, 300)); return { done: true }; });
    await server.listen({ host: '127.0.0.1', port: 0 });
    const { port } = server.server.address() as { port: number };
    const agent = new Agent({ keepAlive: true });
    try {
      // A first request leaves an idle keep-alive connection; the second is in flight when the close starts.
      const get = () => new Promise<{ connection: string | undefined; body: string }>((resolve, reject) => {
        request({ host: '127.0.0.1', port, path: '/slow', agent }, (res) => {
          let body = '';
          res.on('data', (d) => { body += d; });
          res.on('end', () => resolve({ connection: res.headers.connection, body }));
        }).on('error', reject).end();
      });
      expect((await get()).connection).toBe('keep-alive');
      const inFlight = get();
      await new Promise((r) => setTimeout(r, 100));
      const started = Date.now();
      await server.close();
      expect(Date.now() - started).toBeLessThan(3000); // not Fastify's 72 s keep-alive timeout
      expect(await inFlight).toEqual({ connection: 'close', body: '{"done":true}' });
    } finally {
      agent.destroy();
      await server.close();
    }
  });
});
