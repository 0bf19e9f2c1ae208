// How `make dev` lays the system out on this machine, shared by scripts/dev.mjs (which runs it) and
// the demo (which drives it): the services' ports, the SMTP port incident mails to, and the local
// secrets file. One place, so that the two never disagree.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from './index.mjs';
import { completeSecrets } from './secrets.mjs';

/** Local ports of the services (each service's config default; docs/configuration.md). */
export const DEV_SERVICE_PORTS = { gateway: 4000, identity: 4001, consent: 4002, 'data-sharing': 4003, retention: 4004, incident: 4005 };

/**
 * Where incident's SMTP_URL points in development (smtp://127.0.0.1:2525). Nothing listens there
 * under `make dev` alone (mail deliveries are retried, then fall back to SMS); `make demo` starts a
 * real SMTP server on it for its run.
 */
export const DEV_SMTP_PORT = 2525;

/**
 * Development secrets (infra/lib/secrets.mjs), generated once into .cache/dev/secrets.json (mode 600,
 * never committed) and completed there when a service starts requiring a new one.
 * @returns {Record<string, string>}
 */
export function devSecrets() {
  const file = join(cacheDir(), 'dev', 'secrets.json');
  const saved = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  const { secrets, added } = completeSecrets(saved);
  if (added.length) {
    mkdirSync(join(cacheDir(), 'dev'), { recursive: true });
    writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  }
  return secrets;
}
