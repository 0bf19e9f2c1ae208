import { defineError } from '@pipp/service-kit';

/**
 * The incident service's coded errors (one error shape, `clause` on refusals). Messages are shown to
 * the client, so they say what to do.
 */
export const IncidentErrors = {
  /** 422: a notice lacks an element its clause requires (5.4.2, VI, 2.4.2(5)); nothing was sent. */
  incompleteNotice: defineError('PIPP_INCOMPLETE_NOTICE', 422, 'The notice lacks required elements'),
  /** 404 */
  incidentNotFound: defineError('PIPP_INCIDENT_NOT_FOUND', 404, 'No such security incident'),
  notificationNotFound: defineError('PIPP_NOTIFICATION_NOT_FOUND', 404, 'No such notification'),
  announcementNotFound: defineError('PIPP_ANNOUNCEMENT_NOT_FOUND', 404, 'No such announcement'),
  reportNotFound: defineError('PIPP_REPORT_NOT_FOUND', 404, 'No such report'),
  /** 400: an incident time that cannot be (in the future, before 1970, or occurred after it was discovered). */
  badTime: defineError('PIPP_BAD_TIME', 400, 'The time is not acceptable'),
  /** 409: the incident is closed, or a status change goes backwards. */
  incidentClosed: defineError('PIPP_INCIDENT_CLOSED', 409, 'The incident is closed'),
  badTransition: defineError('PIPP_BAD_TRANSITION', 409, 'This status change is not allowed'),
  /**
   * 409: the incident's last notification is still being delivered, or reached its subjects and the
   * incident has not changed since (5.4.2: one notice per thing to tell, not one per click).
   */
  notificationInProgress: defineError('PIPP_NOTIFICATION_IN_PROGRESS', 409, 'A notification of this incident is still being delivered'),
  alreadyNotified: defineError('PIPP_ALREADY_NOTIFIED', 409, 'The affected subjects were already notified of this incident as it stands'),
  /** 409: nobody to notify. */
  emptyAudience: defineError('PIPP_EMPTY_AUDIENCE', 409, 'The notice has nobody to reach'),
  /** 409: a report that is closed takes no replies. */
  reportClosed: defineError('PIPP_REPORT_CLOSED', 409, 'The report is closed'),
  /** 403: the subject's data was erased. */
  subjectErased: defineError('PIPP_SUBJECT_ERASED', 409, "The subject's data was erased"),
};
