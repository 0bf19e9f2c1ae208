import type { Profile } from '../plugins/models.js';

/**
 * The channels on which the subject can be notified (policy 5.4.2: mail, letter, telephone, push;
 * plus SMS), from the verified phone and the profile's contact fields; the payload of
 * `privacy.subject.contact-changed`. Only non-empty channels appear.
 */
export function contactChannels(phone: string, profile: Profile) {
  const channels: { sms?: string; telephone?: string; email?: string; push?: string; letter?: string } = { sms: phone, telephone: phone };
  if (profile.email) channels.email = profile.email;
  if (profile.pushEndpoint) channels.push = profile.pushEndpoint;
  if (profile.postalAddress) channels.letter = profile.postalAddress;
  return channels;
}
