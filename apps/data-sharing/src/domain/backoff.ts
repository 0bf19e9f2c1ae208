/**
 * Delay before the next webhook delivery attempt (ms): `base × 2^(attempt−1)`, capped at `max`, with
 * ±20 % jitter so that many notices failing together do not retry in lock-step.
 * @param attempt the attempt that just failed, from 1.
 * @param random a number in [0, 1) (injectable for tests).
 */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number, random: number = Math.random()): number {
  const raw = Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 40)));
  return Math.max(1, Math.round(raw * (0.8 + 0.4 * random)));
}
