import { Type } from '@sinclair/typebox';

/** The services of the platform; each owns its own MongoDB database. */
export const SERVICES = ['gateway', 'identity', 'consent', 'data-sharing', 'retention', 'incident'] as const;
export type ServiceName = (typeof SERVICES)[number];
export const ServiceNameSchema = Type.Union(SERVICES.map((s) => Type.Literal(s)));

/** Every service that holds PI and so takes part in the erasure saga (policy 4.1, 4.2). */
export const ERASURE_PARTICIPANTS = ['identity', 'consent', 'data-sharing', 'incident', 'retention'] as const;
export type ErasureParticipant = (typeof ERASURE_PARTICIPANTS)[number];
export const ErasureParticipantSchema = Type.Union(ERASURE_PARTICIPANTS.map((s) => Type.Literal(s)));

/**
 * Roles carried in access tokens (DESIGN.md security model): a data subject acts on their own data;
 * an operator and the data-protection officer (dpo) act for the company; a service acts for itself.
 */
export const ROLES = ['subject', 'operator', 'dpo', 'service'] as const;
export type Role = (typeof ROLES)[number];
export const RoleSchema = Type.Union(ROLES.map((r) => Type.Literal(r)));
