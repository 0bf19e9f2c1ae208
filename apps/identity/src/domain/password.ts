import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import * as common from '@zxcvbn-ts/language-common';
import * as en from '@zxcvbn-ts/language-en';

/** Longest password accepted (characters): generous for passphrases, bounded against hashing abuse. */
export const PASSWORD_MAX_LENGTH = 1024;

let estimator: ZxcvbnFactory | undefined;
function zxcvbn(): ZxcvbnFactory {
  // zxcvbn-ts: dictionaries of common passwords, names, words and keyboard patterns.
  estimator ??= new ZxcvbnFactory({
    dictionary: { ...common.dictionary, ...en.dictionary },
    graphs: common.adjacencyGraphs,
    translations: en.translations,
  });
  return estimator;
}

export type StrengthVerdict =
  | { ok: true; score: number }
  | { ok: false; score: number; reason: string; suggestions: string[] };

/**
 * Judges a new password by estimated guessability (zxcvbn-ts), not by character classes (policy 5.4.1:
 * "please use complex passwords"; DESIGN.md security model). Refuses passwords shorter than
 * `minLength`, longer than 1024 characters, or scoring below `minScore` (0–4), with a reason and
 * suggestions the user can act on. `userInputs` (phone digits, nickname, account name) count as known
 * words, so a password built from them is weak. The password is judged exactly as typed.
 */
export function judgePassword(password: string, opts: { minScore: number; minLength: number; userInputs?: string[] }): StrengthVerdict {
  const length = [...password].length;
  if (length < opts.minLength) {
    return { ok: false, score: 0, reason: `Use at least ${opts.minLength} characters; a few uncommon words make a strong, memorable password`, suggestions: [] };
  }
  if (length > PASSWORD_MAX_LENGTH) {
    return { ok: false, score: 0, reason: `Use at most ${PASSWORD_MAX_LENGTH} characters`, suggestions: [] };
  }
  // The estimator's cost grows with length; past 256 characters nothing more is learned.
  const result = zxcvbn().check(password.slice(0, 256), (opts.userInputs ?? []).filter(Boolean));
  if (result.score >= opts.minScore) return { ok: true, score: result.score };
  const warning = result.feedback.warning;
  return {
    ok: false,
    score: result.score,
    reason: `This password is too easy to guess${warning ? `: ${warning.replace(/\.$/, '')}` : ''}. Choose a longer one made of uncommon words`,
    suggestions: result.feedback.suggestions,
  };
}
