import {
  DATA_CATEGORIES, DATA_CATEGORY_IDS, type DataCategory, type RetentionClock, type RetentionRule, type ServiceName,
} from '@pipp/contracts';

/** The 5.2 criteria a retention period rests on. */
export type RetentionCriterion = '5.2.1' | '5.2.2' | '5.2.3';

/**
 * A retention policy (policy 5.1, 5.2): keep `category` for `periodDays` days counted from
 * `startsFrom`, because of `criterion` (5.2.1 transaction records and inquiries, 5.2.2 safety and
 * quality, 5.2.3 a law, cited in `lawCitation`), then `action` it (erase, or anonymize irreversibly).
 * `service` narrows it to one holder, overriding the general policy of the category there.
 * `keepOnErasure`: the law requires keeping the category even when the subject asks for erasure
 * (5.2.3, PIPL art. 47): an erasure isolates it instead, until the period ends.
 */
export interface RetentionPolicyData {
  category: DataCategory;
  service?: ServiceName | undefined;
  periodDays: number;
  startsFrom: RetentionClock;
  criterion: RetentionCriterion;
  lawCitation?: string | undefined;
  action: 'erase' | 'anonymize';
  keepOnErasure: boolean;
  rationale?: string | undefined;
}

/** Id of a policy: the category, or `category@service` for a service override. */
export function policyId(p: Pick<RetentionPolicyData, 'category' | 'service'>): string {
  return p.service ? `${p.category}@${p.service}` : p.category;
}

/** Parses a policy id back into category and service; null when it names no category/holder. */
export function parsePolicyId(id: string): { category: DataCategory; service?: ServiceName } | null {
  const [category, service, extra] = id.split('@');
  if (extra !== undefined || !category || !(DATA_CATEGORY_IDS as string[]).includes(category)) return null;
  if (service === undefined) return { category: category as DataCategory };
  return { category: category as DataCategory, service: service as ServiceName };
}

/**
 * Checks a policy before it is stored; returns problems (empty when valid):
 * - 5.2.3 needs the law cited (`lawCitation`);
 * - `keepOnErasure` only under 5.2.3 (only a law can override the subject's request, PIPL art. 47);
 * - a service override must name a service that holds the category.
 */
export function policyProblems(p: RetentionPolicyData): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = [];
  if (p.criterion === '5.2.3' && !p.lawCitation?.trim()) problems.push({ path: '/body/lawCitation', message: 'criterion 5.2.3 needs the law or regulation cited' });
  if (p.keepOnErasure && p.criterion !== '5.2.3') problems.push({ path: '/body/keepOnErasure', message: 'only a law (criterion 5.2.3) can require keeping data the subject asked to erase' });
  if (p.service && !(DATA_CATEGORIES[p.category].holders as readonly string[]).includes(p.service)) {
    problems.push({ path: '/params/policyId', message: `${p.service} does not hold ${p.category}` });
  }
  return problems;
}

const d = (category: DataCategory, periodDays: number, startsFrom: RetentionClock, criterion: RetentionCriterion, action: 'erase' | 'anonymize', rationale: string, law?: string, keepOnErasure = false): RetentionPolicyData => ({
  category, periodDays, startsFrom, criterion, action, rationale, keepOnErasure, ...(law ? { lawCitation: law } : {}),
});

/**
 * The policies seeded at first start, one per data category (the DPO edits them afterwards). Periods
 * are this project's defaults, chosen as the shortest that serve the 5.2 criterion named.
 */
export const DEFAULT_POLICIES: RetentionPolicyData[] = [
  d('phone-number', 30, 'account-closure', '5.2.1', 'erase', 'Account identifier: kept while the account exists, then long enough to answer inquiries about a closed account'),
  d('identity-verification', 30, 'collection', '5.2.2', 'erase', 'One-time codes and verification attempts: abuse investigation window'),
  d('credentials', 0, 'account-closure', '5.2.1', 'erase', 'Sign-in credentials serve no purpose once the account is closed'),
  d('profile', 0, 'account-closure', '5.2.1', 'erase', 'Optional profile: only while the account exists'),
  d('session', 30, 'collection', '5.2.2', 'erase', 'Sessions and refresh tokens: security review of recent sign-ins'),
  d('device-info', 180, 'collection', '5.2.3', 'erase', 'Network logs for security (2.4.1(3))', 'Cybersecurity Law of the PRC art. 21(3): network logs kept for no less than six months'),
  d('activity-log', 180, 'collection', '5.2.2', 'anonymize', 'Browsing and search logs: personalization quality; kept afterwards only as anonymized statistics'),
  d('contact-channel', 0, 'account-closure', '5.2.1', 'erase', 'Contact channels: only while the account exists'),
  d('transaction-record', 1095, 'purpose-fulfilled', '5.2.3', 'anonymize', 'Transaction records (5.2.1) with a statutory minimum', 'E-Commerce Law of the PRC art. 31: transaction information kept for at least three years from completion', true),
  d('consent-record', 1095, 'purpose-fulfilled', '5.2.1', 'erase', 'Proof of consent and policy acknowledgment, to answer inquiries and audits'),
  d('sharing-record', 1095, 'collection', '5.2.3', 'erase', 'Records of sharing, transfer and disclosure', 'PIPL art. 56: personal information protection impact assessment reports and processing records kept for at least three years'),
  d('indirect-collection', 1095, 'collection', '5.2.3', 'erase', 'Source confirmations of indirectly collected PI (2.4.2(3))', 'PIPL art. 56: processing records kept for at least three years'),
  d('support-report', 1095, 'purpose-fulfilled', '5.2.1', 'anonymize', 'User reports, questions and complaints: answer follow-up inquiries'),
  d('notification-record', 365, 'collection', '5.2.1', 'erase', 'Proof of notices and their delivery (5.4.2, VI)'),
  d('erasure-request', 1095, 'purpose-fulfilled', '5.2.1', 'erase', 'The erasure request ledger (ids, grounds, counts): proof the right was honoured, answer inquiries'),
  d('financial-account', 30, 'purpose-fulfilled', '5.2.1', 'erase', 'Sensitive PI: only as long as the transaction needs it'),
  d('precise-location', 7, 'collection', '5.2.1', 'erase', 'Sensitive PI: whereabouts are kept for the shortest time'),
  d('biometric', 0, 'purpose-fulfilled', '5.2.1', 'erase', 'Sensitive PI: erased as soon as the verification is done'),
  d('health', 30, 'purpose-fulfilled', '5.2.1', 'erase', 'Sensitive PI: only as long as the service needs it'),
  d('id-document', 30, 'purpose-fulfilled', '5.2.1', 'erase', 'Sensitive PI: identity document numbers after verification'),
  d('minor-data', 0, 'purpose-fulfilled', '5.2.1', 'erase', 'Sensitive PI of minors under 14: erased as soon as the purpose ends'),
];

/**
 * The rules of an expiry sweep (contracts RetentionRule): one per policy, service overrides marked
 * with their service (a participant applies its own override where one exists, else the general rule).
 */
export function sweepRules(policies: RetentionPolicyData[]): RetentionRule[] {
  return policies.map((p) => ({
    category: p.category, periodDays: p.periodDays, action: p.action, criterion: p.criterion, startsFrom: p.startsFrom,
    ...(p.service ? { service: p.service } : {}),
  }));
}

/** The rule a given service applies for a category: its own override, else the general one. */
export function effectiveRule(rules: RetentionRule[], service: ServiceName, category: DataCategory): RetentionRule | undefined {
  return rules.find((r) => r.category === category && r.service === service) ?? rules.find((r) => r.category === category && !r.service);
}
