/**
 * User reports (policy 5.4.1: an account or password leak; 2.2: a question, a complaint, or a result
 * that did not meet expectations because of wrong information, for negotiation; preamble: questions
 * about the policy).
 */
export const REPORT_KINDS = ['account-leak', 'question', 'complaint', 'wrong-information'] as const;
export type ReportKind = (typeof REPORT_KINDS)[number];

export const REPORT_KIND_CLAUSE: Record<ReportKind, string> = {
  'account-leak': '5.4.1',
  question: 'preamble',
  complaint: '2.2',
  'wrong-information': '2.2',
};

export const REPORT_STATUSES = ['open', 'in-progress', 'awaiting-subject', 'resolved', 'closed'] as const;
export type ReportStatus = (typeof REPORT_STATUSES)[number];

/** Allowed status changes. A resolved report may be reopened (the subject disagrees: negotiation, 2.2). */
const TRANSITIONS: Record<ReportStatus, readonly ReportStatus[]> = {
  open: ['in-progress', 'awaiting-subject', 'resolved', 'closed'],
  'in-progress': ['awaiting-subject', 'resolved', 'closed'],
  'awaiting-subject': ['in-progress', 'resolved', 'closed'],
  resolved: ['in-progress', 'closed'],
  closed: [],
};

/** True when a report may move from `from` to `to`. */
export function canTransition(from: ReportStatus, to: ReportStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/**
 * The status after a reply: a subject's reply to a report waiting on them (or already resolved) puts
 * it back in progress; support's reply to an open report starts the work. Closed reports take no replies.
 */
export function statusAfterReply(current: ReportStatus, by: 'subject' | 'support'): ReportStatus | 'refused' {
  if (current === 'closed') return 'refused';
  if (by === 'subject') return current === 'awaiting-subject' || current === 'resolved' ? 'in-progress' : current;
  return current === 'open' ? 'in-progress' : current;
}
