import type { FastifyReply, FastifyRequest } from 'fastify';
import type { LoggerOptions } from 'pino';

/** Field names whose values are PI or secrets; redacted wherever they appear (up to 3 levels deep). */
export const PI_FIELDS = [
  'password', 'newPassword', 'currentPassword', 'phone', 'phoneNumber', 'mobile', 'e164', 'code', 'otp',
  'token', 'accessToken', 'refreshToken', 'idToken', 'secret', 'clientSecret', 'email', 'nickname', 'name',
  'fullName', 'accountName', 'address', 'postalAddress', 'idNumber', 'avatar', 'channels', 'contact',
] as const;

/** pino `redact` paths: auth headers and cookies, and every PI field at any of the first three levels. */
export const REDACT_PATHS = [
  'req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]', 'res.headers["set-cookie"]',
  ...PI_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]),
];

const SCRUBBERS: [RegExp, string][] = [
  [/Bearer\s+[A-Za-z0-9._~+/=-]+/g, 'Bearer [redacted]'],
  [/eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, '[redacted-jwt]'],
  [/[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g, '[redacted-email]'],
  // International numbers (+…), then mainland mobile numbers with or without a 0086/86 prefix.
  [/\+[1-9][\d\s-]{5,16}\d/g, '[redacted-phone]'],
  [/(?<!\d)(?:0{0,2}86[\s-]?)?1[3-9]\d(?:[\s-]?\d){8}(?!\d)/g, '[redacted-phone]'],
];

/**
 * Last line of defence: replaces phone numbers, e-mail addresses, bearer tokens and JWTs inside free
 * text (log messages, error messages) with placeholders.
 */
export function scrub(text: string): string {
  // Full-width digits and signs (＋８６ １３９…) are the same number: fold them first.
  let out = /[\uFF01-\uFF5E\u3000]/.test(text) ? text.normalize('NFKC') : text;
  for (const [re, replacement] of SCRUBBERS) out = out.replace(re, replacement);
  return out;
}

/** A URL path percent-decoded when it can be (so that an encoded `%2B86…` or `%40` is scrubbed too). */
function decoded(path: string): string {
  try { return decodeURIComponent(path); } catch { return path; }
}

/** Keeps the network part of an IP address only (IPv4 /24, IPv6 /48): enough to debug, not to identify. */
export function maskIp(ip: string | undefined): string | undefined {
  if (!ip) return ip;
  const v4 = /^(?:::ffff:)?(\d+\.\d+\.\d+)\.\d+$/.exec(ip);
  if (v4) return `${v4[1]}.0/24`;
  if (ip.includes(':')) return `${ip.split(':').slice(0, 3).join(':')}::/48`;
  return '[ip]';
}

/**
 * pino options for a service: JSON lines with the service name, redaction of PI fields, a scrubber
 * for free text, and request/response serializers that never log bodies, query strings or full IPs.
 */
export function loggerOptions(service: string, level: string, format: 'json' | 'pretty' = 'json'): LoggerOptions {
  return {
    level,
    ...(format === 'pretty'
      ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,service' } } }
      : {}),
    base: { service },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map((a) => (typeof a === 'string' ? scrub(a) : a)) as Parameters<typeof method>);
      },
    },
    serializers: {
      req(req: FastifyRequest) {
        return {
          method: req.method,
          url: scrub(decoded(req.url.split('?')[0]!)),
          route: req.routeOptions?.url,
          ip: maskIp(req.ip),
        };
      },
      res(reply: FastifyReply) {
        return { statusCode: reply.statusCode };
      },
      err(err: Error & { code?: string; statusCode?: number }) {
        return {
          type: err.name,
          // Not `code`: that name is redacted everywhere (one-time codes), which hid every error code.
          errorCode: err.code,
          statusCode: err.statusCode,
          message: scrub(err.message ?? ''),
          stack: err.stack ? scrub(err.stack) : undefined,
        };
      },
    },
  };
}
