import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { compile, describeErrors } from '@pipp/contracts';
import type { Config } from '../config.js';
import { parseMobileNumber } from '../domain/phone.js';
import { judgePassword } from '../domain/password.js';
import { newId } from './keys.js';

const BootstrapSchema = Type.Array(Type.Object({
  /** The account id to create it with (so that other services can be configured with it, e.g. retention's DPO_ACCOUNT_IDS); generated when absent. */
  id: Type.Optional(Type.String({ pattern: '^stf_[0-9a-f]{32}$' })),
  phone: Type.String({ minLength: 1, maxLength: 40 }),
  role: Type.Union([Type.Literal('dpo'), Type.Literal('operator')]),
  password: Type.String({ minLength: 1, maxLength: 1024 }),
  displayName: Type.String({ minLength: 1, maxLength: 64 }),
}, { additionalProperties: false }), { maxItems: 20 });

/**
 * Parses config `IDENTITY_BOOTSTRAP_STAFF`: the staff accounts that must exist (the first DPO, who
 * then creates operators through `POST /v1/identity/admin/staff`).
 * @throws Error naming the variable for malformed JSON, an invalid number or a weak password.
 */
export function parseBootstrapStaff(json: string, config: Pick<Config, 'PHONE_REGIONS' | 'PASSWORD_MIN_SCORE' | 'PASSWORD_MIN_LENGTH'>) {
  if (!json.trim()) return [];
  let parsed: unknown;
  try { parsed = JSON.parse(json); } catch { throw new Error('IDENTITY_BOOTSTRAP_STAFF is not valid JSON'); }
  const check = compile(BootstrapSchema);
  if (!check(parsed)) throw new Error(`IDENTITY_BOOTSTRAP_STAFF is invalid: ${describeErrors(check.errors)}`);
  return (parsed as { id?: string; phone: string; role: 'dpo' | 'operator'; password: string; displayName: string }[]).map((s, i) => {
    const phone = parseMobileNumber(s.phone, config.PHONE_REGIONS.split(','));
    if (!phone.ok) throw new Error(`IDENTITY_BOOTSTRAP_STAFF[${i}].phone: ${phone.reason}`);
    const verdict = judgePassword(s.password, { minScore: config.PASSWORD_MIN_SCORE, minLength: config.PASSWORD_MIN_LENGTH });
    if (!verdict.ok) throw new Error(`IDENTITY_BOOTSTRAP_STAFF[${i}].password: ${verdict.reason}`);
    return { ...s, phone: phone.e164 };
  });
}

/** Creates the configured bootstrap staff accounts at start when their number has none (idempotent). */
export const staffBootstrapPlugin = fp(async function staffBootstrap(app: FastifyInstance, opts: { config: Config }) {
  const wanted = parseBootstrapStaff(opts.config.IDENTITY_BOOTSTRAP_STAFF, opts.config);
  if (!wanted.length) return;
  app.addHook('onReady', async () => {
    for (const s of wanted) {
      if (await app.models.staff.exists({ phone: s.phone })) continue;
      try {
        await app.models.staff.create({
          _id: s.id ?? newId('stf'), phone: s.phone, role: s.role, displayName: s.displayName, passwordHash: await app.passwords.hash(s.password),
          active: true, createdBy: 'bootstrap', createdAt: new Date(),
        });
        app.log.info({ role: s.role }, 'bootstrap staff account created');
      } catch (err) {
        if ((err as { code?: number }).code !== 11000) throw err;
      }
    }
  });
}, { name: 'identity-staff-bootstrap', dependencies: ['identity-models', 'identity-passwords'] });
