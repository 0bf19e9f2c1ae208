/**
 * Brute-force rules for sign-in (policy 5.4.1 account security; PIPL art. 51 security measures).
 * Counted per phone number whether or not it is registered, so the rules themselves reveal nothing
 * about which numbers have accounts.
 */
export interface ThrottleRules {
  /** Consecutive failures that lock the number. */
  lockThreshold: number;
  /** Lock duration (ms). */
  lockMs: number;
  /** First non-zero delay (ms). */
  delayBaseMs: number;
  /** Delay cap (ms). */
  delayMaxMs: number;
}

/**
 * Delay imposed before answering the next attempt (ms): nothing after the first failure, then
 * base × 2^(failures-2), capped; online guessing slows down exponentially.
 */
export function growingDelayMs(failures: number, rules: ThrottleRules): number {
  if (failures <= 1) return 0;
  return Math.min(rules.delayMaxMs, rules.delayBaseMs * 2 ** (failures - 2));
}

/** True while a lock is in force; a locked number answers exactly like a wrong password. */
export function isLocked(lockedUntil: Date | undefined | null, now: Date): boolean {
  return !!lockedUntil && lockedUntil.getTime() > now.getTime();
}

/** The lock end after a failure that brought the count to `failures`, or undefined if no lock yet. */
export function lockAfter(failures: number, now: Date, rules: ThrottleRules): Date | undefined {
  return failures >= rules.lockThreshold ? new Date(now.getTime() + rules.lockMs) : undefined;
}

/** Start (ms) of the fixed window of `windowMs` that contains `now`: counters are keyed by it. */
export function windowStart(now: Date, windowMs: number): number {
  return Math.floor(now.getTime() / windowMs) * windowMs;
}
