/** Summary figures for the benchmark scripts (apps/<service>/bench). */

/** The median element of `xs` ranked by `by` (the upper one of an even count). `xs` must not be empty. */
export function medianBy<T>(xs: readonly T[], by: (x: T) => number): T {
  if (!xs.length) throw new Error('medianBy: no values');
  return [...xs].sort((a, b) => by(a) - by(b))[Math.floor(xs.length / 2)]!;
}

/** The median of numbers (the upper one of an even count). */
export const median = (xs: readonly number[]): number => medianBy(xs, (x) => x);

/** The p-th percentile (0–100, nearest rank) of numbers; 0 for none. */
export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
}
