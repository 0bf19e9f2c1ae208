import ipaddr from 'ipaddr.js';

/**
 * Which webhook targets are allowed (recipients' deletion-notice endpoints). A recipient URL must not
 * be a way to reach our own network (SSRF): it must be https, name a host on the configured allow-list
 * (`WEBHOOK_ALLOWED_HOSTS`), carry no credentials, and resolve only to public unicast addresses.
 * Loopback is allowed only when local config says so (`WEBHOOK_ALLOW_LOOPBACK`, development and tests),
 * and then plain http is accepted for loopback targets. Private (RFC 1918, ULA), link-local (incl.
 * cloud metadata 169.254.169.254), CGNAT, multicast, reserved and unspecified addresses never are.
 */

export interface WebhookPolicy {
  /** Host names (lower case) or `*.suffix` patterns. */
  allowedHosts: string[];
  allowLoopback: boolean;
}

export type AddressClass = 'public' | 'loopback' | 'private' | 'link-local' | 'other';

/** Classifies an IP address (v4, v6, or v4-mapped v6). */
export function classifyAddress(address: string): AddressClass {
  if (!ipaddr.isValid(address)) return 'other';
  let ip = ipaddr.parse(address);
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) ip = (ip as ipaddr.IPv6).toIPv4Address();
  const range = ip.range();
  switch (range) {
    case 'unicast': return 'public';
    case 'loopback': return 'loopback';
    case 'private': case 'uniqueLocal': case 'carrierGradeNat': return 'private';
    case 'linkLocal': return 'link-local';
    default: return 'other';
  }
}

/** True when a connection to this resolved address is allowed. */
export function isAddressAllowed(address: string, policy: Pick<WebhookPolicy, 'allowLoopback'>): boolean {
  const c = classifyAddress(address);
  return c === 'public' || (c === 'loopback' && policy.allowLoopback);
}

/** Parses `WEBHOOK_ALLOWED_HOSTS` (comma-separated; blanks ignored; lower-cased). */
export function parseAllowedHosts(value: string): string[] {
  return value.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean);
}

/** True when `host` (lower case, IPv6 without brackets) matches an allow-list entry. */
export function hostAllowed(host: string, allowed: string[]): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
  return allowed.some((entry) => {
    const e = entry.replace(/^\[|\]$/g, '');
    if (e.startsWith('*.')) return h.endsWith(e.slice(1)) && h.length > e.length - 1;
    return h === e;
  });
}

const isLoopbackName = (host: string) => host === 'localhost' || host.endsWith('.localhost');

/**
 * Validates a webhook URL at registration (and again before each delivery). Returns the parsed URL or
 * the reason it is refused. Addresses behind a host name are checked when connecting (see the webhook
 * plugin), so DNS cannot be used to smuggle an internal address in later.
 */
export function validateWebhookUrl(raw: string, policy: WebhookPolicy): { ok: true; url: URL } | { ok: false; reason: string } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'not a valid absolute URL' };
  }
  if (url.username || url.password) return { ok: false, reason: 'credentials in the URL are not allowed; the notice is signed instead' };
  if (url.hash) return { ok: false, reason: 'a fragment is not allowed' };
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const literal = ipaddr.isValid(host) ? classifyAddress(host) : undefined;
  const loopback = literal === 'loopback' || isLoopbackName(host);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback && policy.allowLoopback)) {
    return { ok: false, reason: `only https is allowed${policy.allowLoopback ? ' (plain http only for loopback)' : ''}` };
  }
  if (!hostAllowed(host, policy.allowedHosts)) {
    return { ok: false, reason: `host ${host} is not on the webhook allow-list (WEBHOOK_ALLOWED_HOSTS)` };
  }
  if (literal !== undefined && !isAddressAllowed(host, policy)) {
    return { ok: false, reason: `address ${host} is ${literal === 'loopback' ? 'loopback, allowed only by local config' : `a ${literal} address`} and cannot receive notices` };
  }
  if (isLoopbackName(host) && !policy.allowLoopback) return { ok: false, reason: `${host} is loopback, allowed only by local config` };
  return { ok: true, url };
}
