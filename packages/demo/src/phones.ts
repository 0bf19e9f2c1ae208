// Synthetic data subjects: valid mainland China mobile numbers (three-digit carrier prefixes in use,
// eight random digits), and the written forms people type them in.
import { randomInt } from 'node:crypto';

const PREFIXES = ['134', '135', '136', '137', '138', '139', '150', '151', '152', '157', '158', '159', '182', '183', '187', '188', '130', '131', '132', '155', '156', '185', '186', '133', '153', '180', '181', '189', '177', '199'];

/** A random mainland mobile number in E.164 (`+86` and 11 digits). */
export function randomMobile(): string {
  return `+86${PREFIXES[randomInt(PREFIXES.length)]}${String(randomInt(100_000_000)).padStart(8, '0')}`;
}

/**
 * One of the forms a user may type an E.164 mainland number in, chosen by `i`: `+86…`, `0086 …`,
 * spaced national `139 1234 5678`, dashed `+86-139-…`, or full-width digits.
 */
export function typedForm(e164: string, i: number): string {
  const n = e164.slice(3);
  switch (i % 5) {
    case 0: return e164;
    case 1: return `0086 ${n}`;
    case 2: return `${n.slice(0, 3)} ${n.slice(3, 7)} ${n.slice(7)}`;
    case 3: return `+86-${n.slice(0, 3)}-${n.slice(3, 7)}-${n.slice(7)}`;
    default: return e164.replace(/[0-9+]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0));
  }
}
