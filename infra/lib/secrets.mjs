// Secrets for LOCAL runs only (make dev, the tests, the demo), generated on this machine and never
// committed. Production sets each from its own secret store (docs/configuration.md). One list, so that
// a service that starts requiring a new secret needs one line here and nothing else.
import { generateKeyPairSync, randomBytes } from 'node:crypto';

const SERVICES = ['gateway', 'identity', 'consent', 'data-sharing', 'retention', 'incident'];

/** Secret name → generator of a fresh value (strings; IDENTITY_BOOTSTRAP_STAFF is JSON). */
export const SECRET_GENERATORS = {
  // identity's ES256 signing key (PKCS#8 PEM of an EC P-256 key)
  IDENTITY_SIGNING_KEY: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  // service → client secret for service tokens (JSON map)
  SERVICE_CLIENT_SECRETS: () => JSON.stringify(Object.fromEntries(SERVICES.map((s) => [s, randomBytes(24).toString('base64url')]))),
  // consent: keys the pseudonyms of kept consent proofs
  CONSENT_PSEUDONYM_KEY: () => randomBytes(32).toString('base64url'),
  // data-sharing: seals recipients' secrets and collected PI (32 bytes, base64)
  DATA_ENCRYPTION_KEY: () => randomBytes(32).toString('base64'),
  // incident: keys the pseudonymous references incident records keep
  INCIDENT_PSEUDONYM_KEY: () => randomBytes(32).toString('base64url'),
  // identity: the first data-protection officer, created at start (sign in at /v1/identity/public/staff/sign-in)
  // (with its account id, so that `make dev` can name it as the DPO retention escalates to)
  IDENTITY_BOOTSTRAP_STAFF: () => JSON.stringify([{ id: `stf_${randomBytes(16).toString('hex')}`, phone: '+8613800000001', role: 'dpo', displayName: 'Local DPO', password: `dpo-${randomBytes(12).toString('base64url')}-local` }]),
};

/** A fresh set of every secret the services need locally. @returns {Record<string, string>} */
export function localSecrets() {
  return Object.fromEntries(Object.entries(SECRET_GENERATORS).map(([k, make]) => [k, make()]));
}

/**
 * `saved` completed with any secret it lacks (a service that started requiring one since it was
 * written). @param {Record<string, unknown>} saved @returns {{ secrets: Record<string, string>, added: string[] }}
 */
export function completeSecrets(saved) {
  const secrets = /** @type {Record<string, string>} */ ({});
  const added = [];
  for (const [k, make] of Object.entries(SECRET_GENERATORS)) {
    const v = saved[k];
    if (typeof v === 'string' && v) secrets[k] = v;
    else if (v !== undefined && v !== null && typeof v !== 'string') secrets[k] = JSON.stringify(v); // older files kept JSON values
    else { secrets[k] = make(); added.push(k); }
  }
  return { secrets, added };
}
