import { Type } from '@sinclair/typebox';
import type { ServiceName } from './services.js';

/**
 * Categories of personal information. `sensitive` follows PIPL art. 28 (biometrics, specific
 * identity, medical health, financial accounts, whereabouts, minors' PI): such data needs separate
 * consent and explicit confirmation when collected indirectly (policy 2.4.2(3)). `holders` lists the
 * services that store the category; the retention service's sweeps and the erasure saga use it.
 */
export const DATA_CATEGORIES = {
  'phone-number': { title: 'Mobile phone number', sensitive: false, holders: ['identity', 'incident'] },
  'identity-verification': { title: 'One-time codes and identity verification records', sensitive: false, holders: ['identity'] },
  credentials: { title: 'Password hash and sign-in credentials', sensitive: false, holders: ['identity'] },
  profile: { title: 'Profile: nickname, avatar, account name and other optional fields', sensitive: false, holders: ['identity'] },
  session: { title: 'Sessions and refresh tokens', sensitive: false, holders: ['identity'] },
  'device-info': { title: 'Device signals: user agent, IP prefix, device id, risk scores', sensitive: false, holders: ['identity'] },
  'activity-log': { title: 'Browsing, search and usage logs', sensitive: false, holders: ['identity'] },
  'contact-channel': { title: 'Contact channels: e-mail, push endpoint, postal address', sensitive: false, holders: ['identity', 'incident'] },
  'transaction-record': { title: 'Service transaction records', sensitive: false, holders: ['data-sharing'] },
  'consent-record': { title: 'Consent and policy acknowledgment records', sensitive: false, holders: ['consent'] },
  'sharing-record': { title: 'Records of sharing, transfer and public disclosure', sensitive: false, holders: ['data-sharing'] },
  'indirect-collection': { title: 'PI obtained from third parties', sensitive: false, holders: ['data-sharing'] },
  'support-report': { title: 'User reports, questions and complaints', sensitive: false, holders: ['incident'] },
  'notification-record': { title: 'Notices sent to the subject and their delivery', sensitive: false, holders: ['incident'] },
  'erasure-request': { title: 'Erasure requests and their progress', sensitive: false, holders: ['retention'] },
  'financial-account': { title: 'Financial account information', sensitive: true, holders: ['data-sharing'] },
  'precise-location': { title: 'Whereabouts and precise location', sensitive: true, holders: ['data-sharing'] },
  biometric: { title: 'Biometric information', sensitive: true, holders: ['data-sharing'] },
  health: { title: 'Medical and health information', sensitive: true, holders: ['data-sharing'] },
  'id-document': { title: 'Identity document numbers (specific identity)', sensitive: true, holders: ['data-sharing'] },
  'minor-data': { title: 'Personal information of minors under 14', sensitive: true, holders: ['data-sharing'] },
} as const satisfies Record<string, { title: string; sensitive: boolean; holders: readonly ServiceName[] }>;

export type DataCategory = keyof typeof DATA_CATEGORIES;
export const DATA_CATEGORY_IDS = Object.keys(DATA_CATEGORIES) as DataCategory[];

export const DataCategorySchema = Type.Union(DATA_CATEGORY_IDS.map((c) => Type.Literal(c)), {
  description: 'A category of personal information',
});

/** True for sensitive PI (PIPL art. 28). */
export function isSensitive(category: DataCategory): boolean {
  return DATA_CATEGORIES[category].sensitive;
}
