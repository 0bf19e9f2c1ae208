import { ChannelSchema, DataCategorySchema, ErrorResponseSchema, NOTIFICATION_KINDS, RecordId, SubjectId, Timestamp, VisibleText } from '@pipp/contracts';
import { Type } from '@sinclair/typebox';
import { INCIDENT_STATUSES, SEVERITIES } from '../domain/incidents.js';
import { REPORT_KINDS, REPORT_STATUSES } from '../domain/reports.js';

/** Error responses every route may give, in the one error shape. */
export const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ErrorResponseSchema]));

const lit = <T extends string>(values: readonly T[], description?: string) => Type.Union(values.map((v) => Type.Literal(v)), description ? { description } : {});

export const Text = (max: number, description?: string) => VisibleText(max, description ? { description } : {});
export const KindSchema = lit(NOTIFICATION_KINDS);
export const SeveritySchema = lit(SEVERITIES, 'low | medium | high | critical');
export const IncidentStatusSchema = lit(INCIDENT_STATUSES, 'open → contained → resolved → closed');
export const ReportKindSchema = lit(REPORT_KINDS, 'account-leak (5.4.1), question (preamble), complaint or wrong-information (2.2)');
export const ReportStatusSchema = lit(REPORT_STATUSES);
export const Cursor = Type.String({ maxLength: 256, pattern: '^[A-Za-z0-9_.:-]*$' });
export const Limit = Type.Integer({ minimum: 1, maximum: 200, default: 50 });

export const IdParams = Type.Object({ id: RecordId }, { additionalProperties: false });
export const SubjectParams = Type.Object({ subjectId: SubjectId }, { additionalProperties: false });
export const SubjectReportParams = Type.Object({ subjectId: SubjectId, reportId: RecordId }, { additionalProperties: false });

const TimelineEntrySchema = Type.Object({
  at: Timestamp, by: Type.String(), role: Type.String(), kind: Type.String(),
  text: Type.Optional(Type.String()), fields: Type.Optional(Type.Array(Type.String())),
});
export const RegulatorReportSchema = Type.Object({
  id: Type.String(), regulator: Type.String(), reportedAt: Timestamp, method: Type.String(), reference: Type.Optional(Type.String()),
  summary: Type.String(), recordedBy: Type.String(), recordedAt: Timestamp,
});

/** The editable description of an incident (policy 5.4.2; PIPL art. 57). */
export const IncidentFields = {
  title: Text(200),
  basicSituation: Text(8000, 'The basic situation: what happened, when, how it was found'),
  cause: Type.Optional(Text(4000, 'Cause, as far as known')),
  categories: Type.Array(DataCategorySchema, { minItems: 1, maxItems: 32, uniqueItems: true, description: 'Categories of PI involved' }),
  possibleImpact: Text(4000, 'The possible impact on the subjects'),
  measuresTaken: Type.Array(Text(1000), { maxItems: 50, description: 'Disposal measures already taken' }),
  measuresPlanned: Type.Array(Text(1000), { maxItems: 50, description: 'Measures that will be taken' }),
  advice: Text(4000, 'What subjects can do to prevent or reduce the risk'),
  remedies: Text(4000, 'Remedial measures offered to subjects'),
  severity: SeveritySchema,
  occurredAt: Type.Optional(Timestamp),
  discoveredAt: Type.Optional(Timestamp),
};

export const IncidentSchema = Type.Object({
  id: Type.String(),
  ...IncidentFields,
  cause: Type.Optional(Type.String()),
  affected: lit(['listed', 'all-subjects'] as const),
  affectedCount: Type.Integer(),
  status: IncidentStatusSchema,
  discoveredAt: Timestamp,
  createdBy: Type.String(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  timeline: Type.Array(TimelineEntrySchema),
  regulatorReports: Type.Array(RegulatorReportSchema),
  notificationIds: Type.Array(Type.String()),
  announcementIds: Type.Array(Type.String()),
});

export const ProgressSchema = Type.Object({
  audienceSize: Type.Integer({ description: 'Subjects the notice is for' }),
  planned: Type.Integer({ description: 'Subjects put into batches so far' }),
  batches: Type.Integer(),
  batchesProcessed: Type.Integer(),
  byStatus: Type.Object({
    queued: Type.Integer(), retrying: Type.Integer(), delivered: Type.Integer(), failed: Type.Integer(), unreachable: Type.Integer(),
    declined: Type.Integer({ description: 'General notices not sent: the subject withdrew consent to notifications (policy 2.1.1)' }),
  }, { description: 'Deliveries by status (exact counts)' }),
  byChannel: Type.Record(Type.String(), Type.Integer(), { description: 'Deliveries accepted per channel' }),
  retries: Type.Integer(),
  fallbacks: Type.Integer(),
  percentDone: Type.Number({ description: 'Share of the audience with a final outcome, 0–100' }),
});

export const NotificationSchema = Type.Object({
  id: Type.String(), kind: KindSchema, title: Type.String(), body: Type.Optional(Type.String()),
  elements: Type.Record(Type.String(), Type.String()), contact: Type.String(), clause: Type.String(),
  channels: Type.Optional(Type.Array(ChannelSchema)), mode: Type.String({ description: 'first-channel | every-channel' }), incidentId: Type.Optional(Type.String()),
  audience: Type.Object({ kind: Type.String(), size: Type.Integer() }),
  reach: Type.Object({ oneByOne: Type.Boolean(), announce: Type.Boolean(), reason: Type.Optional(Type.String()) }),
  status: Type.String(), refusedReason: Type.Optional(Type.String()),
  requestedBy: Type.Object({ service: Type.String(), actor: Type.Optional(Type.String()), role: Type.Optional(Type.String()) }),
  announcementIds: Type.Array(Type.String()),
  createdAt: Timestamp, completedAt: Type.Optional(Timestamp),
  progress: Type.Optional(ProgressSchema),
});

export const AnnouncementSchema = Type.Object({
  id: Type.String(), kind: KindSchema, title: Type.String(), body: Type.Optional(Type.String()),
  sections: Type.Array(Type.Object({ name: Type.String(), label: Type.String(), text: Type.String() })),
  text: Type.String({ description: 'The announcement as one text, every element under its heading' }),
  reason: Type.String(), incidentId: Type.Optional(Type.String()), publishedAt: Timestamp,
});

export const ReportSchema = Type.Object({
  id: Type.String(), subjectId: Type.Union([SubjectId, Type.Null()]), kind: ReportKindSchema, status: ReportStatusSchema, clause: Type.String(),
  title: Type.String(), text: Type.String(),
  replies: Type.Array(Type.Object({ id: Type.String(), at: Timestamp, by: Type.String(), text: Type.String() })),
  resolution: Type.Optional(Type.String()), openedBy: Type.String(), sourceReportId: Type.Optional(Type.String()),
  createdAt: Timestamp, updatedAt: Timestamp,
});

export const DeliverySchema = Type.Object({
  id: Type.String(), notificationId: Type.String(), subjectId: Type.String(), kind: KindSchema, plan: Type.Array(ChannelSchema),
  status: Type.String(), channel: Type.Optional(ChannelSchema), deliveredChannel: Type.Optional(ChannelSchema), deliveredChannels: Type.Optional(Type.Array(ChannelSchema)),
  deliveredAt: Type.Optional(Timestamp),
  nextAttemptAt: Type.Optional(Timestamp),
  attempts: Type.Array(Type.Object({ channel: ChannelSchema, at: Timestamp, ok: Type.Boolean(), error: Type.Optional(Type.String()), permanent: Type.Optional(Type.Boolean()) })),
});

export const Page = <T extends ReturnType<typeof Type.Object>>(item: T) => Type.Object({ items: Type.Array(item), next: Type.Union([Type.String(), Type.Null()]) });

export { ChannelSchema, RecordId, SubjectId, Timestamp };
