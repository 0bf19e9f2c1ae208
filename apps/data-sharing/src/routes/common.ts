import type {} from '@fastify/jwt';
import {
  BasisRecordSchema, ErrorResponseSchema, LEGAL_BASIS_IDS, type DecisionRequest, type Decision, VisibleText,
} from '@pipp/contracts';
import { Type, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DsErrors } from '../errors.js';
import type { Refusal } from '../domain/sharing.js';
import type { Actor } from '../plugins/models.js';

/** Error responses of a route, one shape for every status (docs/architecture.md). */
export function errors(...codes: number[]): Record<number, TSchema> {
  return Object.fromEntries(codes.map((c) => [c, ErrorResponseSchema]));
}

/** Params of subject-scoped routes. */
export const SubjectParams = Type.Object({ subjectId: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' }) }, { additionalProperties: false });

/** A non-consent basis claimed with its evidence (policy 3.4, 2.4.2(4)). */
export const ClaimedBasisSchema = Type.Object({
  legalBasis: Type.Union(LEGAL_BASIS_IDS.filter((b) => b !== 'consent').map((b) => Type.Literal(b))),
  evidenceRef: VisibleText(512, { description: 'Statute, court order number, authority request id …' }),
}, { additionalProperties: false });

export const BasisOut = Type.Union([BasisRecordSchema, Type.Null()]);

export const ActorOut = Type.Object({ role: Type.String(), actorId: Type.String() });

/** The acting token as an audit actor. */
export function actorOf(request: FastifyRequest): Actor {
  return { role: request.user.role, actorId: request.user.sub };
}

/** Turns a domain refusal into the coded error, with its clause. */
export function refusalError(r: Refusal) {
  const make = r.kind === 'transfer' ? DsErrors.transferRefused
    : r.kind === 'inadmissible' ? DsErrors.basisInadmissible
      : r.kind === 'incomplete' ? DsErrors.recipientIncomplete
        : DsErrors.recipientIneligible;
  return make(r.message, { clause: r.clause });
}

/** New record id with a readable prefix (`shr_…`). */
export function newId(prefix: string): string {
  return `${prefix}_${crypto.randomUUID().replace(/-/g, '')}`;
}

/**
 * Refuses collection for a function that was shut down (policy 2.4.2(5)): 403 citing the clause.
 */
export async function assertFunctionOpen(app: FastifyInstance, functionId: string | undefined): Promise<void> {
  if (!functionId) return;
  const s = await app.models.shutdowns.findById(functionId).lean();
  if (s && s.effectiveAt.getTime() <= Date.now()) {
    throw DsErrors.functionShutDown(`the function "${functionId}" was shut down on ${s.effectiveAt.toISOString()} (${s.title}); no new data is collected for it`, { clause: '2.4.2(5)' });
  }
}

/** Asks the consent service (through the cached, fail-closed client) and returns the decision. */
export async function decide(app: FastifyInstance, request: DecisionRequest): Promise<Decision> {
  return app.consent.decide(request);
}

/** ISO string or undefined. */
export const iso = (d: Date | undefined | null) => (d ? new Date(d).toISOString() : undefined);
