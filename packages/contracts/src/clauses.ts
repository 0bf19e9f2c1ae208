/**
 * Addressable clauses of the general privacy policy (`policy/privacy-policy.txt`), in the id syntax
 * every service, error message and docs/policy-traceability.md use:
 * - numbered sections as written: `1.1`, `4.2.3`;
 * - parenthesised items: `2.4.1(1)`, `2.4.2(4)`; roman sub-items appended: `2.4.1(1)i`, `2.4.2(4)viii`;
 * - unnumbered paragraphs: `<section>-<name>` (e.g. `4.2-recipients`, `3.4-anonymized`);
 * - the text before section 1: `preamble`; the final section: `VI`.
 * The consent service parses the policy text into these ids; a test there checks both agree.
 */
export const CLAUSES = {
  preamble: 'Read and understand the policy before use; continued use means agreement; contact us with questions',
  '1': 'Scope of application',
  '1.1': 'The policy covers our products and services; a service-specific policy takes precedence where inconsistent',
  '1.2': 'Third-party services are governed by their own policies',
  '2': 'Information collection and use',
  '2.1': 'Personal information collected and used when you use the services',
  '2.1.1': 'Basic functions require the necessary information; refusing it blocks only that function',
  '2.1.2': 'Additional functions need separate agreement; refusing never affects basic functions',
  '2.2': 'Concerns about confidentiality or wrong results can be raised for negotiation',
  '2.3': 'The functional scenarios provided',
  '2.4.1': 'Scenarios in which information is collected with authorization',
  '2.4.1(1)': 'Becoming a user: registration by mobile phone number',
  '2.4.1(1)i': 'Basic service: mobile number to create an account; basic services usable without registering; identity verification',
  '2.4.1(1)ii': 'Additional service: optional profile information (picture, account name, nickname, password)',
  '2.4.1(2)': 'Service information display: browsing, search and usage logs for personalization',
  '2.4.1(3)': 'Security: device information to judge account and transaction risk',
  '2.4.2': 'Other precautions',
  '2.4.2(1)': 'Information about other people supplied by a user needs their legal authorization',
  '2.4.2(2)': 'New purposes, purpose changes and data obtained from third parties need prior consent',
  '2.4.2(3)': 'Indirect collection: written confirmation of the source, informing the subject, explicit confirmation of sensitive PI',
  '2.4.2(4)': 'Exceptions to consent',
  '2.4.2(4)i': 'Legal obligations',
  '2.4.2(4)ii': 'National security and national defence',
  '2.4.2(4)iii': 'Public safety, public health and major public interests',
  '2.4.2(4)iv': 'Judicial or administrative law enforcement',
  '2.4.2(4)v': 'Vital interests of the subject or others when consent is hard to obtain',
  '2.4.2(4)vi': 'Information the subject disclosed to the public',
  '2.4.2(4)vii': 'Information from lawfully and publicly disclosed sources',
  '2.4.2(4)viii': 'Necessary for signing and performing an agreement with the subject',
  '2.4.2(4)ix': 'Safe and stable operation of the products and services',
  '2.4.2(4)x': 'Other circumstances stipulated by laws and regulations',
  '2.4.2(4)-anonymized': 'Processing of de-identified data that cannot be re-identified',
  '2.4.2(5)': 'Stopping a product or service: stop collecting, notify one by one or by announcement, delete or anonymize',
  '3': 'Provide information externally',
  '3.1': 'Sharing only in the listed cases',
  '3.1.1': 'Sharing necessary for legal obligations',
  '3.1.2': 'Sharing with the subject\'s consent',
  '3.3': 'Public disclosure only in the listed cases',
  '3.3.1': 'Public disclosure with express consent or the subject\'s active choice',
  '3.3.2': 'Public disclosure about violations, by law or with consent',
  '3.4': 'Exceptions to prior consent for sharing, transfer and public disclosure',
  '3.4.1': 'Legal obligations',
  '3.4.2': 'National security and national defence',
  '3.4.3': 'Public safety, public health and major public interests',
  '3.4.4': 'Judicial or administrative law enforcement',
  '3.4.5': 'Vital interests when consent is hard to obtain',
  '3.4.6': 'Information the subject disclosed to the public',
  '3.4.7': 'Information from lawfully and publicly disclosed sources',
  '3.4-anonymized': 'Sharing anonymized data that cannot be re-identified needs no consent',
  '4': 'Your rights',
  '4.1': 'Right to inquire, correct, supplement and delete',
  '4.1.2': 'Account settings: query, correct and supplement account information',
  '4.2': 'Grounds on which deletion can be requested',
  '4.2.1': 'Processing violates laws and regulations',
  '4.2.2': 'Collection or use without explicit consent',
  '4.2.3': 'Processing seriously violates the agreement',
  '4.2.4': 'The processing purpose is realized, cannot be realized or is no longer necessary',
  '4.2.5': 'The product or service stopped, or the storage period expired',
  '4.2-recipients': 'Notify recipients of the subject\'s PI and require them to delete it',
  '4.2-backups': 'Backups that cannot be cleared at once are stored securely and isolated until cleared or anonymized',
  '5': 'The storage of the information',
  '5.1': 'Storage period: keep only as long as necessary unless the law requires',
  '5.2': 'Criteria for the storage period',
  '5.2.1': 'Completing the service transaction, keeping records and answering inquiries',
  '5.2.2': 'Safety and quality of the services',
  '5.2.3': 'Special provisions or laws and regulations',
  '5.3': 'Storage location: PI collected in the PRC is stored in China',
  '5.3.1': 'Exception: laws and regulations clearly provide',
  '5.3.2': 'Exception: the subject\'s separate authorization',
  '5.3.3': 'Exception: necessary for a cross-border contract the subject is party to',
  '5.4': 'Storage security',
  '5.4.1': 'Account security: leak reports and complex passwords',
  '5.4.2': 'Security incidents: response and notification by mail, letter, telephone, push or announcement',
  VI: 'Policy updates: notify specific changes; no restriction of rights without express consent',
} as const;

/** A clause id of the general policy, e.g. `4.2.3`. */
export type ClauseId = keyof typeof CLAUSES;

export const CLAUSE_IDS = Object.keys(CLAUSES) as ClauseId[];

/** True when `id` names a clause of the general policy. */
export function isClauseId(id: string): id is ClauseId {
  return Object.hasOwn(CLAUSES, id);
}
