import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { compile, describeErrors } from '@pipp/contracts';
import type { Config } from '../config.js';
import { contactChannels } from '../domain/contact.js';
import { parseMobileNumber } from '../domain/phone.js';
import { judgePassword } from '../domain/password.js';
import { newId } from './keys.js';
import type { OutboxEntry } from '@pipp/service-kit';

/**
 * The contact event of a staff account (`privacy.subject.contact-changed`, keyed by the staff id): the
 * incident service reaches staff by it, e.g. the DPO with escalated erasure requests (retention's
 * DPO_ACCOUNT_IDS); without it those notices reached nobody. `phone` null: no channel any more
 * (the account was deactivated).
 */
export function staffContactEntry(app: FastifyInstance, staffId: string, phone: string | null): OutboxEntry {
  return app.outbox.entry('privacy.subject.contact-changed', {
    subject: staffId,
    payload: { subjectId: staffId, channels: phone ? contactChannels(phone, {}) : {}, preferred: phone ? ['sms'] : [] },
  });
}

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
      const existing = await app.models.staff.findOne({ phone: s.phone }, { _id: 1, active: 1 }).lean();
      if (existing) {
        // Accounts created before staff contacts were published: announced once more (idempotent).
        if (existing.active) await app.outbox.update(app.models.staff, { _id: existing._id }, { $set: { phone: s.phone } }, [staffContactEntry(app, existing._id, s.phone)]);
        continue;
      }
      try {
        const id = s.id ?? newId('stf');
        await app.outbox.insert(app.models.staff, {
          _id: id, phone: s.phone, role: s.role, displayName: s.displayName, passwordHash: await app.passwords.hash(s.password),
          active: true, createdBy: 'bootstrap', createdAt: new Date(),
        }, [staffContactEntry(app, id, s.phone)]);
        app.log.info({ role: s.role }, 'bootstrap staff account created');
      } catch (err) {
        if ((err as { code?: number }).code !== 11000) throw err;
      }
    }
  });
}, { name: 'identity-staff-bootstrap', dependencies: ['identity-models', 'identity-passwords'] });
