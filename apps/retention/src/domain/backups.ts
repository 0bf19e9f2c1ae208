/**
 * Backups and the suppression list (policy 4.2-backups: backup copies that cannot be cleared at once
 * are stored securely and isolated from further processing until they are cleared; an erased subject
 * must never come back from a restore). Pure functions over plain records.
 */

/** One recorded backup generation of one service's database. */
export interface BackupGeneration {
  generationId: string;
  service: string;
  takenAt: Date;
  expiresAt: Date;
}

/** One erased subject on the suppression list: the erasure that put them there and when it ended. */
export interface Suppression {
  requestId: string;
  subjectId: string;
  requestedAt: Date;
  /** When every participant had erased (null while the erasure is still under way). */
  completedAt: Date | null;
}

/**
 * True when a backup generation may hold PI the erasure removed: it was taken before the erasure
 * completed everywhere (or the erasure is still under way).
 */
export function mayHold(generation: Pick<BackupGeneration, 'takenAt'>, s: Pick<Suppression, 'completedAt'>): boolean {
  return s.completedAt === null || generation.takenAt < s.completedAt;
}

/**
 * Until when an erased subject must stay on the suppression list: the expiry of the last unexpired
 * backup generation (of any service) that may hold them; null when none does (the entry can go).
 * An erasure still under way stays listed.
 */
export function suppressedUntil(s: Suppression, generations: BackupGeneration[], now: Date): Date | null | 'open' {
  if (s.completedAt === null) return 'open';
  const holding = generations.filter((g) => g.expiresAt > now && mayHold(g, s));
  if (!holding.length) return null;
  return new Date(Math.max(...holding.map((g) => g.expiresAt.getTime())));
}

/** The suppressed erasures a restore of `generation` must re-apply before the data is used again. */
export function toReapply(generation: BackupGeneration, suppressions: Suppression[]): Suppression[] {
  return suppressions.filter((s) => mayHold(generation, s));
}
