import {
  DataCategorySchema, EffectCounts, ErasureGroundSchema, ErasureParticipantSchema, ErasureScopeSchema, ErrorResponseSchema,
  LegalBasisSchema, RecordId, RoleSchema, SafeInteger, ServiceNameSchema, SubjectId, Timestamp, VisibleText,
} from '@pipp/contracts';
import { Type, type TSchema } from '@sinclair/typebox';

/** The one error shape, for the statuses a route can answer with. */
export function errorResponses(...statuses: number[]): Record<number, TSchema> {
  return Object.fromEntries([401, 403, ...statuses].map((s) => [s, ErrorResponseSchema]));
}

export const OriginSchema = Type.Union(['subject', 'operator', 'expiry-sweep', 'business-shutdown'].map((o) => Type.Literal(o)));
export const ActorSchema = Type.Object({ role: RoleSchema, actorId: Type.String() });

/** One participant's progress in an erasure request (policy 4.1: the subject sees the progress). */
export const ParticipantProgressView = Type.Object({
  participant: ErasureParticipantSchema,
  state: Type.Union(['requested', 'completed', 'failed', 'awaiting-recipients'].map((s) => Type.Literal(s)), {
    description: 'requested: asked, no answer yet; completed; failed: retried automatically; awaiting-recipients: recipients of your PI have not confirmed deletion yet (4.2)',
  }),
  attempt: Type.Integer(),
  requestedAt: Timestamp,
  repliedAt: Type.Optional(Timestamp),
  counts: Type.Optional(EffectCounts),
  kept: Type.Optional(Type.Array(Type.Object({ category: DataCategorySchema, legalBasis: LegalBasisSchema, purgeAt: Timestamp, reason: Type.String() }))),
  pendingRecipients: Type.Optional(Type.Integer({ description: 'Recipients notified that have not acknowledged yet' })),
  nextRetryAt: Type.Optional(Timestamp),
  exhausted: Type.Optional(Type.Boolean({ description: 'Automatic retries used up; an operator retry is needed' })),
  error: Type.Optional(Type.String({ description: 'Staff only: the last failure reported' })),
});

/** An erasure request as the subject and staff see it (ids, grounds, counts; never PI in clear). */
export const ErasureRequestView = Type.Object({
  requestId: RecordId,
  kind: Type.Union([Type.Literal('erasure'), Type.Literal('purge'), Type.Literal('restore')], { description: 'erasure: asked for; purge: kept-by-law records whose date came; restore: re-applied after a backup restore' }),
  subjectId: SubjectId,
  scope: ErasureScopeSchema,
  ground: ErasureGroundSchema,
  origin: OriginSchema,
  requestedBy: Type.Object({ role: RoleSchema, actorId: Type.Optional(Type.String()) }),
  reference: Type.Optional(Type.String()),
  status: Type.Union([Type.Literal('in-progress'), Type.Literal('completed'), Type.Literal('refused')]),
  refusal: Type.Optional(Type.Object({ code: Type.String(), clause: Type.String(), message: Type.String() })),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  deadline: Timestamp,
  overdue: Type.Boolean(),
  completedAt: Type.Optional(Timestamp),
  progress: Type.Object({ completed: Type.Integer(), total: Type.Integer() }),
  participants: Type.Array(ParticipantProgressView),
  totals: EffectCounts,
  legalHolds: Type.Array(Type.Object({ category: DataCategorySchema, legalBasis: LegalBasisSchema, purgeAt: Timestamp })),
  escalations: Type.Optional(Type.Array(Type.Object({ level: Type.String(), at: Timestamp, participants: Type.Array(ErasureParticipantSchema) }))),
  joined: Type.Integer({ description: 'Later requests for the same scope that joined this one' }),
  backupsIsolatedUntil: Type.Optional(Type.Union([Timestamp, Type.Null()], { description: 'Until when backup copies that may still hold the erased PI are kept isolated (4.2-backups)' })),
  statusKey: Type.Optional(Type.String({ description: 'Given once, in the answer to the request that opened or joined this one: sent as header X-PIPP-Status-Key to GET /v1/retention/public/erasure-requests/{requestId}, it shows this request without signing in (an account erasure ends the sessions). Keep it; it is not stored in clear.' })),
});

/** Header of the public status route: a status key handed out with the request. */
export const StatusKeyHeaders = Type.Object({ 'x-pipp-status-key': Type.String({ minLength: 16, maxLength: 128, pattern: '^[A-Za-z0-9_-]+$' }) });

export const ErasureRequestList = Type.Object({
  items: Type.Array(ErasureRequestView),
  nextBefore: Type.Optional(Timestamp),
});

/** Body of a new erasure request (policy 4.1, 4.2). */
export const CreateErasureBody = Type.Object({
  scope: ErasureScopeSchema,
  ground: Type.Optional(ErasureGroundSchema),
  reference: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.:#/-]+$', description: 'Staff only: a ticket or case reference (no PI)' })),
  deadline: Type.Optional(Type.String({ format: 'date-time', description: 'Staff only: an earlier deadline than the default' })),
}, { additionalProperties: false });

export const PolicyBody = Type.Object({
  expectedVersion: SafeInteger({ minimum: 0, description: 'The version you read (0 to create a service override)' }),
  periodDays: Type.Integer({ minimum: 0, maximum: 36500 }),
  startsFrom: Type.Union(['collection', 'last-activity', 'account-closure', 'purpose-fulfilled'].map((c) => Type.Literal(c))),
  criterion: Type.Union([Type.Literal('5.2.1'), Type.Literal('5.2.2'), Type.Literal('5.2.3')]),
  lawCitation: Type.Optional(VisibleText(500)),
  action: Type.Union([Type.Literal('erase'), Type.Literal('anonymize')]),
  keepOnErasure: Type.Optional(Type.Boolean({ default: false })),
  rationale: Type.Optional(Type.String({ maxLength: 1000 })),
  note: Type.Optional(Type.String({ maxLength: 500, description: 'Why it changed (kept with the version)' })),
}, { additionalProperties: false });

export const PolicyView = Type.Object({
  policyId: Type.String(),
  category: DataCategorySchema,
  service: Type.Optional(ServiceNameSchema),
  periodDays: Type.Integer(),
  startsFrom: Type.String(),
  criterion: Type.String(),
  lawCitation: Type.Optional(Type.String()),
  action: Type.String(),
  keepOnErasure: Type.Boolean(),
  rationale: Type.Optional(Type.String()),
  version: Type.Integer(),
  updatedAt: Timestamp,
  updatedBy: ActorSchema,
});

export const PolicyVersionView = Type.Object({
  policyId: Type.String(),
  version: Type.Integer(),
  change: Type.String(),
  policy: Type.Union([Type.Omit(PolicyView, ['policyId', 'version', 'updatedAt', 'updatedBy']), Type.Null()]),
  at: Timestamp,
  by: ActorSchema,
  note: Type.Optional(Type.String()),
});

export const PolicyIdParams = Type.Object({ policyId: Type.String({ minLength: 1, maxLength: 80, pattern: '^[a-z0-9-]+(@[a-z0-9-]+)?$' }) });
export const RequestIdParams = Type.Object({ requestId: RecordId });
export const SubjectParams = Type.Object({ subjectId: SubjectId });
export const SubjectRequestParams = Type.Object({ subjectId: SubjectId, requestId: RecordId });

export const ListQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
  before: Type.Optional(Type.String({ format: 'date-time', description: 'Cursor: items created before this time' })),
}, { additionalProperties: false });
