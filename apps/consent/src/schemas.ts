import {
  CountryCode, DataCategorySchema, ErrorResponseSchema, LegalBasisSchema, LEGAL_BASIS_IDS, PurposeId, RecordId,
  SafeInteger, SERVICES, SubjectId, Timestamp, VisibleText,
} from '@pipp/contracts';
import { Type, type TSchema } from '@sinclair/typebox';
import { CHANNELS } from './plugins/models.js';

/** HTTP shapes of the consent service (TypeBox; unknown properties rejected). */

export const Errors4xx = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ErrorResponseSchema])) as Record<number, TSchema>;

export const ActorSchema = Type.Object({
  role: Type.Union(['subject', 'operator', 'dpo', 'service', 'system'].map((r) => Type.Literal(r))),
  id: Type.Optional(Type.String()),
});

export const ScopeSchema = Type.Object({
  recipientId: Type.Optional(RecordId),
  disclosure: Type.Optional(Type.Boolean()),
  category: Type.Optional(DataCategorySchema),
  country: Type.Optional(CountryCode),
}, { additionalProperties: false, description: 'At most one item: a recipient (3.1.2), public disclosure (3.3.1), a sensitive category (PIPL art. 29) or a destination country (5.3.2)' });

export const ChannelSchema = Type.Union(CHANNELS.map((c) => Type.Literal(c)), { description: 'Where the consent was given or withdrawn' });
const NonConsentBasis = Type.Union(LEGAL_BASIS_IDS.filter((b) => b !== 'consent').map((b) => Type.Literal(b)));
const Kind = Type.Union([Type.Literal('basic'), Type.Literal('additional')]);
const Status = Type.Union([Type.Literal('active'), Type.Literal('retired')]);
const FunctionId = Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z0-9][a-z0-9-]*$' });

export const PurposeBodySchema = Type.Object({
  title: VisibleText(200),
  description: Type.String({ maxLength: 2000, default: '' }),
  kind: Kind,
  policyClause: Type.Union([Type.String({ minLength: 1, maxLength: 32 }), Type.Null()], { description: 'Clause of the general policy specifying the purpose; null for a purpose the policy does not specify (2.4.2(2))' }),
  categories: Type.Array(DataCategorySchema, { minItems: 1, maxItems: 32, uniqueItems: true }),
  legalBases: Type.Array(LegalBasisSchema, { minItems: 1, maxItems: 11, uniqueItems: true }),
  standingBasis: Type.Union([Type.Object({ legalBasis: NonConsentBasis, evidenceRef: VisibleText(512) }, { additionalProperties: false }), Type.Null()], { default: null }),
  requires: Type.Union([Type.Literal('recipient'), Type.Literal('disclosure'), Type.Literal('country'), Type.Null()], { default: null }),
  grantedAtRegistration: Type.Boolean({ default: false }),
  why: VisibleText(1000),
  status: Type.Optional(Status),
  expectedRevision: Type.Optional(SafeInteger({ minimum: 0, description: 'Optimistic concurrency: the revision you read (0 for a new purpose)' })),
}, { additionalProperties: false });

export const PurposeSchema = Type.Object({
  id: PurposeId,
  title: Type.String(),
  description: Type.String(),
  kind: Kind,
  policyClause: Type.Union([Type.String(), Type.Null()]),
  categories: Type.Array(DataCategorySchema),
  legalBases: Type.Array(LegalBasisSchema),
  standingBasis: Type.Union([Type.Object({ legalBasis: LegalBasisSchema, evidenceRef: Type.String() }), Type.Null()]),
  requires: Type.Union([Type.String(), Type.Null()]),
  grantedAtRegistration: Type.Boolean(),
  why: Type.String(),
  status: Status,
  revision: Type.Integer(),
  /** The standard notice for asking this consent: recorded as the text shown when a client sends none. */
  notice: Type.String(),
});

export const FunctionBodySchema = Type.Object({
  title: VisibleText(200),
  kind: Kind,
  purposes: Type.Array(PurposeId, { minItems: 1, maxItems: 16, uniqueItems: true }),
  categories: Type.Array(DataCategorySchema, { minItems: 1, maxItems: 32, uniqueItems: true }),
  why: VisibleText(1000),
  status: Type.Optional(Status),
  expectedRevision: Type.Optional(SafeInteger({ minimum: 0 })),
}, { additionalProperties: false });

export const FunctionSchema = Type.Object({
  id: Type.String(),
  title: Type.String(),
  kind: Kind,
  purposes: Type.Array(Type.String()),
  categories: Type.Array(DataCategorySchema),
  why: Type.String(),
  status: Status,
  revision: Type.Integer(),
  shutDown: Type.Union([Type.Object({ shutdownId: Type.String(), effectiveAt: Timestamp }), Type.Null()]),
});

export const CatalogueSchema = Type.Object({
  purposes: Type.Array(PurposeSchema),
  functions: Type.Array(FunctionSchema),
});

export const PurposeIdParams = Type.Object({ purposeId: PurposeId }, { additionalProperties: false });
export const FunctionIdParams = Type.Object({ functionId: FunctionId }, { additionalProperties: false });

// ---- policies

const AppliesToSchema = Type.Union([
  Type.Object({ general: Type.Literal(true) }, { additionalProperties: false }),
  Type.Object({ service: Type.Union(SERVICES.map((s) => Type.Literal(s))) }, { additionalProperties: false }),
  Type.Object({ functionId: FunctionId }, { additionalProperties: false }),
]);
/** A BCP 47 language tag (`zh-CN`, `en`); 35 characters is the length RFC 5646 asks every tag to fit. */
const LanguageTag = Type.String({ pattern: '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$', maxLength: 35, description: 'BCP 47 language tag of the text shown' });
const TermsSchema = Type.Object({
  purposes: Type.Record(PurposeId, Type.Object({
    categories: Type.Optional(Type.Array(DataCategorySchema, { maxItems: 32, uniqueItems: true })),
    legalBases: Type.Optional(Type.Array(LegalBasisSchema, { minItems: 1, maxItems: 11, uniqueItems: true })),
  }, { additionalProperties: false }), { maxProperties: 64 }),
}, { additionalProperties: false, description: 'Per-purpose terms of a service-specific policy, overriding the catalogue for that service or function (1.1)' });

export const DocumentIdParams = Type.Object({ documentId: RecordId }, { additionalProperties: false });
export const VersionParams = Type.Object({ documentId: RecordId, version: SafeInteger({ minimum: 1 }) }, { additionalProperties: false });
export const ClauseParams = Type.Object({
  documentId: RecordId, version: SafeInteger({ minimum: 1 }), clauseId: Type.String({ minLength: 1, maxLength: 40 }),
}, { additionalProperties: false });

export const PolicyVersionMetaSchema = Type.Object({
  documentId: Type.String(),
  version: Type.Integer(),
  title: Type.String(),
  appliesTo: AppliesToSchema,
  summary: Type.String(),
  changes: Type.Array(Type.String()),
  restrictsRights: Type.Boolean(),
  affectedPurposes: Type.Array(Type.String()),
  terms: Type.Union([TermsSchema, Type.Null()]),
  effectiveAt: Timestamp,
  noticeEndsAt: Timestamp,
  publishedAt: Timestamp,
  inForce: Type.Boolean({ description: 'This is the version in force now' }),
});
export const ClauseSchema = Type.Object({ id: Type.String(), parent: Type.Union([Type.String(), Type.Null()]), text: Type.String() });
export const PolicyVersionSchema = Type.Composite([PolicyVersionMetaSchema, Type.Object({
  text: Type.String(),
  clauses: Type.Array(ClauseSchema),
})]);

export const PublishBodySchema = Type.Object({
  title: VisibleText(200),
  appliesTo: Type.Optional(Type.Union([
    Type.Object({ service: Type.Union(SERVICES.map((s) => Type.Literal(s))) }, { additionalProperties: false }),
    Type.Object({ functionId: FunctionId }, { additionalProperties: false }),
  ])),
  text: VisibleText(200_000),
  summary: VisibleText(4000),
  changes: Type.Array(VisibleText(1000), { maxItems: 100, default: [] }),
  restrictsRights: Type.Boolean({ description: 'The version restricts the subjects\' rights: processing under it waits for each subject\'s express consent (VI)' }),
  affectedPurposes: Type.Optional(Type.Array(PurposeId, { maxItems: 64, uniqueItems: true })),
  terms: Type.Optional(Type.Union([TermsSchema, Type.Null()])),
  effectiveAt: Type.Optional(Timestamp),
  noticeDays: Type.Optional(Type.Integer({ minimum: 0, maximum: 365 })),
}, { additionalProperties: false });

// ---- consents

export const SubjectParams = Type.Object({ subjectId: SubjectId }, { additionalProperties: false });
export const RecordParams = Type.Object({ subjectId: SubjectId, recordId: RecordId }, { additionalProperties: false });

export const ConsentChangeSchema = Type.Object({
  purpose: PurposeId,
  scope: Type.Optional(ScopeSchema),
  state: Type.Union([Type.Literal('granted'), Type.Literal('withdrawn')]),
  categories: Type.Optional(Type.Array(DataCategorySchema, {
    minItems: 1, maxItems: 32, uniqueItems: true,
    description: 'A grant for only these of the purpose\'s categories (default: all of them)',
  })),
}, { additionalProperties: false });

export const ConsentChangesBodySchema = Type.Object({
  changes: Type.Array(ConsentChangeSchema, { minItems: 1, maxItems: 32 }),
  channel: ChannelSchema,
  noticeText: Type.Optional(VisibleText(8000, { description: 'The text shown to the subject (default: the purpose\'s standard notice)' })),
  language: Type.Optional(LanguageTag),
  evidenceRef: Type.Optional(VisibleText(512, { description: 'Staff recording on the subject\'s behalf: reference of the signed form or call' })),
}, { additionalProperties: false });

export const RecordSchema = Type.Object({
  recordId: Type.String(),
  seq: Type.Integer(),
  kind: Type.Union([Type.Literal('purpose'), Type.Literal('policy')]),
  purpose: Type.Optional(Type.String()),
  scope: Type.Optional(ScopeSchema),
  document: Type.Optional(Type.Object({ documentId: Type.String(), version: Type.Integer() })),
  state: Type.Union([Type.Literal('granted'), Type.Literal('withdrawn')]),
  consentType: Type.Union([Type.Literal('express'), Type.Literal('implied')]),
  channel: Type.String(),
  policyVersion: Type.Union([Type.Integer(), Type.Null()]),
  categories: Type.Array(Type.String()),
  notice: Type.Optional(Type.Object({ sha256: Type.String(), text: Type.Optional(Type.String()) })),
  language: Type.Optional(Type.String()),
  recordedBy: ActorSchema,
  evidenceRef: Type.Optional(Type.String()),
  at: Timestamp,
  hash: Type.String(),
});

export const ReceiptSchema = Type.Object({
  version: Type.String(),
  jurisdiction: Type.String(),
  consentTimestamp: Type.Integer(),
  collectionMethod: Type.String(),
  consentReceiptID: Type.String(),
  language: Type.String(),
  piiPrincipalId: Type.String(),
  piiControllers: Type.Array(Type.Object({ piiController: Type.String(), onBehalf: Type.Boolean(), contact: Type.String() })),
  policyUrl: Type.String(),
  services: Type.Array(Type.Object({
    service: Type.String(),
    purposes: Type.Array(Type.Object({
      purpose: Type.String(),
      purposeCategory: Type.Array(Type.String()),
      consentType: Type.String(),
      piiCategory: Type.Array(Type.String()),
      primaryPurpose: Type.Boolean(),
      termination: Type.String(),
      thirdPartyDisclosure: Type.Boolean(),
      thirdPartyName: Type.Optional(Type.String()),
    })),
  })),
  sensitive: Type.Boolean(),
  spiCat: Type.Array(Type.String()),
  event: Type.Object({ type: Type.String(), time: Timestamp, method: Type.String(), actor: Type.String() }),
  state: Type.String(),
  scope: ScopeSchema,
  policy: Type.Optional(Type.Object({ documentId: Type.String(), version: Type.Integer() })),
  policyVersion: Type.Union([Type.Integer(), Type.Null()]),
  notice: Type.Optional(Type.Object({ sha256: Type.String(), language: Type.String() })),
  recordSeq: Type.Integer(),
  recordHash: Type.String(),
}, { description: 'Consent receipt: Kantara Consent Receipt v1.1 fields with ISO/IEC TS 27560 event, notice and state' });

export const ConsentChangesResultSchema = Type.Object({
  records: Type.Array(RecordSchema),
  receipts: Type.Array(ReceiptSchema),
});

export const AcceptBodySchema = Type.Object({
  documentId: RecordId,
  version: SafeInteger({ minimum: 1 }),
  channel: ChannelSchema,
  language: Type.Optional(LanguageTag),
  evidenceRef: Type.Optional(VisibleText(512)),
}, { additionalProperties: false });

export const CurrentConsentSchema = Type.Object({
  purpose: Type.String(),
  scope: Type.Optional(ScopeSchema),
  state: Type.Union([Type.Literal('granted'), Type.Literal('withdrawn')]),
  recordId: Type.String(),
  at: Timestamp,
  policyVersion: Type.Union([Type.Integer(), Type.Null()]),
  categories: Type.Array(Type.String()),
});

export const FunctionStatusSchema = Type.Object({
  functionId: Type.String(),
  title: Type.String(),
  kind: Kind,
  available: Type.Boolean(),
  clause: Type.String(),
  reason: Type.String(),
});

export const SubjectViewSchema = Type.Object({
  subjectId: Type.String(),
  consents: Type.Array(CurrentConsentSchema),
  functions: Type.Array(FunctionStatusSchema),
  policies: Type.Array(Type.Object({
    documentId: Type.String(),
    inForce: Type.Union([Type.Integer(), Type.Null()]),
    acceptedExpressly: Type.Integer({ description: 'Highest version accepted expressly (0: none)' }),
    accepted: Type.Integer({ description: 'Highest version accepted, expressly or by continued use (0: none)' }),
    awaitingExpressConsent: Type.Array(Type.Integer(), { description: 'Rights-restricting versions in force not yet accepted expressly (VI)' }),
  })),
  processingWithoutConsent: Type.Array(Type.Object({
    purpose: Type.String(),
    legalBasis: Type.String(),
    evidenceRef: Type.String(),
    service: Type.Optional(Type.String()),
    recipientId: Type.Optional(Type.String()),
    country: Type.Optional(Type.String()),
    firstAt: Type.Optional(Timestamp),
    lastAt: Type.Optional(Timestamp),
    count: Type.Optional(Type.Integer()),
    standing: Type.Boolean({ description: 'Declared by the purpose for every subject (e.g. security, 2.4.1(3))' }),
  })),
});

export const HistoryQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
  afterSeq: SafeInteger({ minimum: 0, default: 0 }),
}, { additionalProperties: false });

export { ErrorResponseSchema, Type };
