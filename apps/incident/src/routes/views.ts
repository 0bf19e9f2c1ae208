import type { Static } from '@sinclair/typebox';
import { renderNotice } from '../domain/notice.js';
import type { Announcement, Delivery, Notification, Report } from '../plugins/models.js';
import { REPORT_KIND_CLAUSE } from '../domain/reports.js';
import type { AnnouncementSchema, DeliverySchema, NotificationSchema, ProgressSchema, ReportSchema } from './schemas.js';

const iso = (d: Date | undefined | null) => (d ? new Date(d).toISOString() : undefined);

/** A notification as the API shows it (progress added by the caller when wanted). */
export function toNotification(n: Notification, progress?: Static<typeof ProgressSchema>): Static<typeof NotificationSchema> {
  return {
    id: n._id, kind: n.kind, title: n.title, ...(n.body ? { body: n.body } : {}), elements: n.elements ?? {}, contact: n.contact, clause: n.clause,
    ...(n.channels?.length ? { channels: n.channels } : {}), mode: n.mode ?? 'first-channel', ...(n.incidentId ? { incidentId: n.incidentId } : {}),
    audience: { kind: n.audience.kind, size: n.audienceSize }, reach: n.reach, status: n.status,
    ...(n.refusedReason ? { refusedReason: n.refusedReason } : {}), requestedBy: n.requestedBy, announcementIds: n.announcementIds ?? [],
    createdAt: iso(n.createdAt)!, ...(n.completedAt ? { completedAt: iso(n.completedAt)! } : {}), ...(progress ? { progress } : {}),
  };
}

/** A public announcement, rendered with every element under its heading (policy 5.4.2). */
export function toAnnouncement(a: Announcement): Static<typeof AnnouncementSchema> {
  const rendered = renderNotice({ kind: a.kind, title: a.title, body: a.body, elements: a.elements ?? {}, contact: a.contact }, 'letter');
  return {
    id: a._id, kind: a.kind, title: a.title, ...(a.body ? { body: a.body } : {}), sections: rendered.sections, text: rendered.text, reason: a.reason,
    ...(a.incidentId ? { incidentId: a.incidentId } : {}), publishedAt: iso(a.publishedAt)!,
  };
}

export function toReport(r: Report): Static<typeof ReportSchema> {
  return {
    id: r._id, subjectId: r.subjectId, kind: r.kind, status: r.status, clause: REPORT_KIND_CLAUSE[r.kind], title: r.title, text: r.text,
    replies: (r.replies ?? []).map((x) => ({ id: x.id, at: iso(x.at)!, by: x.by, text: x.text })), ...(r.resolution ? { resolution: r.resolution } : {}),
    openedBy: r.openedBy, ...(r.sourceReportId ? { sourceReportId: r.sourceReportId } : {}), createdAt: iso(r.createdAt)!, updatedAt: iso(r.updatedAt)!,
  };
}

export function toDelivery(d: Delivery): Static<typeof DeliverySchema> {
  const pending = d.status === 'queued' || d.status === 'retrying';
  return {
    id: d._id, notificationId: d.notificationId, subjectId: d.subjectId, kind: d.kind, plan: d.plan, status: d.status,
    ...(pending && d.plan[d.channelIndex] ? { channel: d.plan[d.channelIndex]!, nextAttemptAt: iso(d.nextAttemptAt)! } : {}),
    ...(d.deliveredChannel ? { deliveredChannel: d.deliveredChannel } : {}), ...(d.deliveredChannels?.length ? { deliveredChannels: d.deliveredChannels } : {}),
    ...(d.deliveredAt ? { deliveredAt: iso(d.deliveredAt)! } : {}),
    attempts: (d.attempts ?? []).map((a) => ({ channel: a.channel, at: iso(a.at)!, ok: a.ok, ...(a.error ? { error: a.error } : {}), ...(a.permanent !== undefined ? { permanent: a.permanent } : {}) })),
  };
}
