/**
 * Information about other people supplied by a user (policy 2.4.2(1)): accepted only with the user's
 * attestation that they obtained the legal authorization to provide it (the person's consent, a
 * guardian's or legal representative's authority, or a business authorization), stated in their own
 * words.
 */
export const AUTHORIZATION_KINDS = ['consent-of-the-person', 'guardian', 'legal-representative', 'business-authorization'] as const;
export type AuthorizationKind = (typeof AUTHORIZATION_KINDS)[number];

export interface OtherPeopleAttestation {
  authorized?: boolean;
  kind?: AuthorizationKind;
  statement?: string;
}

/** Lists what is missing from the attestation; empty when it holds. */
export function missingAttestation(a: OtherPeopleAttestation | undefined): string[] {
  const missing: string[] = [];
  if (a?.authorized !== true) missing.push('authorized: true (you obtained their legal authorization)');
  if (!a?.kind) missing.push(`kind (one of ${AUTHORIZATION_KINDS.join(', ')})`);
  if (!a?.statement?.trim()) missing.push('statement (how you obtained the authorization)');
  return missing;
}
