import { Type, type Static } from '@sinclair/typebox';
import { CountryCode, PurposeId, RecordId, SubjectId, VisibleText } from '../common.js';
import { DataCategorySchema } from '../data-categories.js';
import { BasisRecordSchema, LEGAL_BASIS_IDS } from '../legal-bases.js';
import { ServiceNameSchema } from '../services.js';

/**
 * "May service S process categories C of subject U for purpose P (to recipient R / in country K /
 * by public disclosure)?" Asked of the consent service on every processing path (policy 2.1,
 * 2.4.2(2), 2.4.2(4), 3.1, 3.3, 5.3). `legalBasis` claims a non-consent basis with its evidence.
 */
export const DecisionRequestSchema = Type.Object({
  subjectId: SubjectId,
  service: ServiceNameSchema,
  purpose: PurposeId,
  categories: Type.Array(DataCategorySchema, { minItems: 1, maxItems: 32, uniqueItems: true }),
  functionId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  recipientId: Type.Optional(RecordId),
  country: Type.Optional(CountryCode),
  disclosure: Type.Optional(Type.Boolean()),
  legalBasis: Type.Optional(Type.Object({
    legalBasis: Type.Union(LEGAL_BASIS_IDS.filter((b) => b !== 'consent').map((b) => Type.Literal(b))),
    evidenceRef: VisibleText(512),
  }, { additionalProperties: false })),
}, { additionalProperties: false });
export type DecisionRequest = Static<typeof DecisionRequestSchema>;

/** The answer: allowed or not, on which basis, and the policy clause that decides it. */
export const DecisionSchema = Type.Object({
  allowed: Type.Boolean(),
  basis: Type.Union([BasisRecordSchema, Type.Null()]),
  clause: Type.String(),
  reason: Type.String(),
  policyVersion: Type.Optional(Type.Integer({ minimum: 1 })),
}, { additionalProperties: false });
export type Decision = Static<typeof DecisionSchema>;
