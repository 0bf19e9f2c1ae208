import { NOTICE_REQUIRED_ELEMENTS, NOTIFICATION_KINDS, type Channel } from '@pipp/contracts';

/** Kinds of notices this service delivers (contracts: NOTIFICATION_KINDS). */
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

/**
 * What a notice must say, per kind (contracts `NOTICE_REQUIRED_ELEMENTS`, so that every producer knows).
 * Every notice also carries how to contact us (preamble, 2.2), added from configuration.
 */
export const REQUIRED_ELEMENTS = NOTICE_REQUIRED_ELEMENTS;

/** The policy clause each kind of notice fulfils. */
export const KIND_CLAUSE: Record<NotificationKind, string> = {
  'security-incident': '5.4.2',
  'policy-update': 'VI',
  'business-shutdown': '2.4.2(5)',
  'new-device-sign-in': '2.4.1(3)',
  'account-leak': '5.4.1',
  'erasure-completed': '4.1',
  general: 'preamble',
};

/** Headings the subject reads for each element (in this order). */
export const ELEMENT_LABELS: Record<string, string> = {
  basicSituation: 'What happened',
  categories: 'Personal information involved',
  possibleImpact: 'Possible impact on you',
  measures: 'What we have done and will do',
  advice: 'What you can do to prevent or reduce the risk',
  remedies: 'Remedies available to you',
  changes: 'What changes',
  summary: 'Summary',
  effectiveAt: 'Effective from',
  dataHandling: 'What happens to your personal information',
  yourConsent: 'Your consent',
  contact: 'How to contact us',
};

/** A notice as recorded: its kind, title, optional intro, named elements and the contact line. */
export interface Notice {
  kind: NotificationKind;
  title: string;
  body?: string | undefined;
  elements: Record<string, string>;
  /** How to contact us (preamble, 2.2). Always rendered. */
  contact: string;
}

/**
 * The required elements of `kind` that `elements` lacks or leaves blank (whitespace only).
 * Source: policy 5.4.2 (incidents), VI (policy updates), 2.4.2(5) (shutdowns).
 */
export function missingElements(kind: NotificationKind, elements: Record<string, string | undefined>): string[] {
  return REQUIRED_ELEMENTS[kind].filter((name) => !elements[name]?.trim());
}

/** A notice rendered for one channel. `text` is what email, SMS, telephone and letter carry. */
export interface RenderedNotice {
  channel: Channel;
  subject: string;
  text: string;
  /** The structured form (push payloads). */
  sections: { name: string; label: string; text: string }[];
}

const oneLine = (s: string) => s.replace(/[\r\n\t]+/g, ' ').trim();

/** Orders elements: required ones first (in their defined order), then the others alphabetically. */
function orderedSections(notice: Notice) {
  const required = REQUIRED_ELEMENTS[notice.kind];
  const names = [...required, ...Object.keys(notice.elements).filter((n) => !required.includes(n) && n !== 'contact').sort()];
  const sections = names
    .filter((n) => notice.elements[n]?.trim())
    .map((name) => ({ name, label: Object.hasOwn(ELEMENT_LABELS, name) ? ELEMENT_LABELS[name]! : name, text: notice.elements[name]!.trim() }));
  sections.push({ name: 'contact', label: ELEMENT_LABELS.contact!, text: notice.contact.trim() });
  return sections;
}

/**
 * Renders a notice for a channel: every element, each under its heading, the contact line last.
 * SMS and telephone get the same elements in a compact form (long SMS are sent concatenated; a
 * telephone script is read out in full) — no element is ever dropped to fit a channel.
 * @throws IncompleteNoticeError when a required element is missing (see `assertDeliverable`).
 */
export function renderNotice(notice: Notice, channel: Channel): RenderedNotice {
  assertComplete(notice);
  const sections = orderedSections(notice);
  const subject = oneLine(notice.title).slice(0, 200);
  const intro = notice.body?.trim();
  let text: string;
  if (channel === 'sms' || channel === 'telephone') {
    text = [subject, intro, ...sections.map((s) => `${s.label}: ${oneLine(s.text)}`)].filter(Boolean).join(channel === 'sms' ? ' | ' : '. ');
  } else {
    text = [subject, '', ...(intro ? [intro, ''] : []), ...sections.flatMap((s) => [`${s.label}:`, s.text, ''])].join('\n').trimEnd();
  }
  const rendered = { channel, subject, text, sections };
  assertRenderedComplete(notice, rendered);
  return rendered;
}

/** Raised when a notice lacks a required element; nothing is sent. */
export class IncompleteNoticeError extends Error {
  override readonly name = 'IncompleteNoticeError';
  constructor(readonly kind: NotificationKind, readonly missing: string[]) {
    super(`a ${kind} notice must carry ${missing.join(', ')} (policy ${KIND_CLAUSE[kind]})`);
  }
}

/** @throws IncompleteNoticeError when a required element (or the contact line) is missing. */
export function assertComplete(notice: Notice): void {
  const missing = missingElements(notice.kind, notice.elements);
  if (!notice.contact.trim()) missing.push('contact');
  if (missing.length) throw new IncompleteNoticeError(notice.kind, missing);
}

/**
 * The last check before a message leaves: the rendered text must contain every required element and
 * the contact line verbatim (whitespace-normalized for compact channels). Guards against a renderer
 * change silently dropping an element. @throws IncompleteNoticeError
 */
export function assertRenderedComplete(notice: Notice, rendered: Pick<RenderedNotice, 'text'>): void {
  const haystack = oneLine(rendered.text);
  const needed = [...REQUIRED_ELEMENTS[notice.kind], 'contact'];
  const value = (n: string) => (n === 'contact' ? notice.contact : notice.elements[n] ?? '');
  const missing = needed.filter((n) => !value(n).trim() || !haystack.includes(oneLine(value(n))));
  if (missing.length) throw new IncompleteNoticeError(notice.kind, missing);
}
