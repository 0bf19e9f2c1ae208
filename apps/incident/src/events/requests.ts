import { PoisonMessageError } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import { pseudonymOf, storeUnlessErased } from '../domain/erasure.js';

/**
 * Notices other services ask for, delivered with the same channels and tracking as incident notices:
 * - `privacy.notification.requested` (any service; policy 5.4.2, VI, 2.4.2(5));
 * - `privacy.policy.published` (consent; policy VI): every subject is told the specific changes, and
 *   an announcement is published; version 1 (the first publication) notifies nobody;
 * - business shutdowns (2.4.2(5)) arrive as `privacy.notification.requested` from retention, which
 *   composes the notice from what it really erases and chooses one-by-one or announcement (this
 *   service once also announced each `privacy.function.shutdown` itself, to everyone and from all the
 *   function's categories, contradicting retention's notice);
 * - `privacy.account.leak-reported` (identity; policy 5.4.1): a user report is opened and the subject
 *   gets an acknowledgment.
 * A notice lacking an element its clause requires is recorded as refused and dead-lettered.
 */
export function registerRequestConsumers(app: FastifyInstance, config: Config) {
  app.kafka.consume({
    name: 'notification-requests',
    handlers: {
      'privacy.notification.requested': async (event) => {
        const p = event.payload;
        const result = await app.notifier.notify({
          notificationId: p.notificationId, kind: p.kind, title: p.title, body: p.body, elements: p.elements ?? {}, channels: p.channels,
          requestedBy: { service: p.requestedBy }, clause: p.clause,
          audience: 'allSubjects' in p.audience ? { kind: 'all-subjects' } : { kind: 'subjects', subjectIds: p.audience.subjectIds },
        });
        if (!result.ok && result.missing.length) throw new PoisonMessageError(`notice ${p.notificationId} refused: missing ${result.missing.join(', ')}`);
      },

      'privacy.policy.published': async (event) => {
        const p = event.payload;
        if (p.version <= 1) return;
        const changes = p.changes.length ? p.changes.map((c) => `- ${c}`).join('\n') : '';
        const elements: Record<string, string> = { changes, effectiveAt: p.effectiveAt };
        if (p.summary) elements.summary = p.summary;
        if (p.restrictsRights) elements.yourConsent = 'This update restricts rights you have under the policy: it applies to you only once you expressly agree (policy VI). Until then the previous terms apply.';
        const result = await app.notifier.notify({
          notificationId: `ntf_policy_${p.documentId}_v${p.version}`, kind: 'policy-update', clause: 'VI',
          title: `Privacy policy update (${p.documentId === 'general' ? 'general policy' : p.documentId}, version ${p.version})`,
          body: p.appliesTo === 'general' ? 'We updated our privacy policy.' : `We updated the privacy policy that applies to ${p.appliesTo} (policy 1.1).`,
          elements, requestedBy: { service: 'consent' }, audience: { kind: 'all-subjects' },
        });
        if (!result.ok && result.missing.length) throw new PoisonMessageError(`policy update notice refused: missing ${result.missing.join(', ')}`);
      },

      'privacy.account.leak-reported': async (event) => {
        const p = event.payload;
        const id = `rep_leak_${p.reportId}`;
        const now = new Date();
        const kept = await storeUnlessErased(
          () => app.models.erased.exists({ _id: pseudonymOf(p.subjectId, config.INCIDENT_PSEUDONYM_KEY) }),
          () => app.models.reports.create({
            _id: id, subjectId: p.subjectId, kind: 'account-leak', status: 'open', title: 'Account or password leak reported',
            text: p.description?.trim() || '(no description given)', replies: [], openedBy: p.reportedBy === 'support' ? 'support' : 'identity',
            sourceReportId: p.reportId, createdAt: new Date(p.reportedAt), updatedAt: now,
          }).catch((err: { code?: number }) => { if (err.code !== 11000) throw err; }), // a redelivered report
          () => app.models.reports.deleteOne({ _id: id }),
        );
        if (!kept) return; // the subject was erased meanwhile: nothing to open, nobody to tell
        await app.notifier.notify({
          notificationId: `ntf_leak_${p.reportId}`, kind: 'account-leak', clause: '5.4.1',
          title: 'We received your account leak report',
          body: `Your report (${id}) is open with our support team. All your sessions were signed out; ${p.passwordResetRequired === false
            ? 'sign in again with a one-time code sent to your number.'
            : 'set a new, complex password when you next sign in.'} Do not share one-time codes with anyone.`,
          elements: {}, requestedBy: { service: 'identity' }, audience: { kind: 'subjects', subjectIds: [p.subjectId] },
        });
      },
    },
  });
}
