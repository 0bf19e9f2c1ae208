import { isIP } from 'node:net';

/**
 * Why a push endpoint (a URL the subject's device registered through identity) must not be called, or
 * null when it may. Guards the webhook sender against being pointed at our own network (SSRF): in
 * production only `https` to a public host name or address; elsewhere (development, tests on
 * loopback) any http(s) URL. Host names are not resolved here, so a public name that resolves to a
 * private address is not caught (an egress proxy is the complete answer).
 */
export function pushEndpointProblem(url: string, production: boolean): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'not a URL';
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return `scheme ${u.protocol} is not allowed`;
  if (!production) return null;
  if (u.protocol !== 'https:') return 'push endpoints must use https';
  if (u.username || u.password) return 'credentials in the URL are not allowed';
  const host = u.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost') || host.endsWith('.local') || host.endsWith('.internal')) return 'local host names are not allowed';
  if (isIP(host) === 4) {
    const [a, b] = host.split('.').map(Number) as [number, number];
    if (a === 10 || a === 127 || a === 0 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127) || a >= 224) {
      return 'private, loopback and reserved addresses are not allowed';
    }
  }
  if (isIP(host) === 6 && (host === '::1' || host === '::' || /^f[cd]/.test(host) || /^fe[89ab]/.test(host) || host.startsWith('::ffff:'))) {
    return 'private, loopback and reserved addresses are not allowed';
  }
  return null;
}
