/**
 * Security incidents (policy 5.4.2; PIPL art. 57): severity, lifecycle and what an audited change
 * touched.
 */
export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const INCIDENT_STATUSES = ['open', 'contained', 'resolved', 'closed'] as const;
export type IncidentStatus = (typeof INCIDENT_STATUSES)[number];

const ORDER: Record<IncidentStatus, number> = { open: 0, contained: 1, resolved: 2, closed: 3 };

/** Incidents move forward only (open → contained → resolved → closed); a closed incident is final. */
export function canMoveIncident(from: IncidentStatus, to: IncidentStatus): boolean {
  return from !== 'closed' && ORDER[to] >= ORDER[from];
}

/**
 * The names of the fields a patch really changes (compared as JSON), for the audit record and the
 * timeline. Values are not copied into the audit record: incident texts may mention people.
 */
export function changedFields(current: Record<string, unknown>, patch: Record<string, unknown>): string[] {
  return Object.keys(patch).filter((k) => patch[k] !== undefined && JSON.stringify(current[k]) !== JSON.stringify(patch[k])).sort();
}

/**
 * The 5.4.2 elements of an incident's notice, from the incident record: basic situation (with the
 * categories of PI involved), possible impact, the measures taken and planned, advice and remedies.
 */
export function incidentElements(incident: {
  basicSituation: string; categories: readonly string[]; categoryTitles?: Record<string, string>;
  possibleImpact: string; measuresTaken: readonly string[]; measuresPlanned: readonly string[]; advice: string; remedies: string;
}): Record<string, string> {
  const list = (items: readonly string[]) => items.map((m) => `- ${m}`).join('\n');
  const measures = [
    incident.measuresTaken.length ? `Taken:\n${list(incident.measuresTaken)}` : '',
    incident.measuresPlanned.length ? `Planned:\n${list(incident.measuresPlanned)}` : '',
  ].filter(Boolean).join('\n');
  return {
    basicSituation: incident.basicSituation,
    categories: incident.categories.map((c) => incident.categoryTitles?.[c] ?? c).join(', '),
    possibleImpact: incident.possibleImpact,
    measures,
    advice: incident.advice,
    remedies: incident.remedies,
  };
}

/** How far ahead of this clock a time may be (ms): other clocks run a little fast. */
const CLOCK_SKEW_MS = 5 * 60_000;
const EARLIEST = Date.UTC(1970, 0, 1);

/**
 * What is wrong with an incident's times, or null (policy 5.4.2: the notice says when it happened and
 * was found): neither in the future nor before 1970, and not occurred after it was discovered. Pure;
 * times in ms. A breaker helper recorded incidents of the year 0 and of 9999.
 */
export function incidentTimesProblem(t: { occurredAt?: number | undefined; discoveredAt: number }, now: number): { field: 'occurredAt' | 'discoveredAt'; message: string } | null {
  for (const field of ['occurredAt', 'discoveredAt'] as const) {
    const at = t[field];
    const message = at === undefined ? null : pastTimeProblem(field, at, now);
    if (message) return { field, message };
  }
  if (t.occurredAt !== undefined && t.occurredAt > t.discoveredAt) return { field: 'occurredAt', message: 'occurredAt cannot come after discoveredAt' };
  return null;
}

/**
 * Why `at` (ms) cannot be a time that has passed, or null: later than now (beyond clock skew) or before
 * 1970. Pure. Incident times use it, and the time a report to the regulator was made (PIPL art. 57;
 * a breaker helper recorded reports of the years 0 and 9999).
 */
export function pastTimeProblem(field: string, at: number, now: number): string | null {
  if (at > now + CLOCK_SKEW_MS) return `${field} cannot lie in the future`;
  if (at < EARLIEST) return `${field} cannot lie before 1970`;
  return null;
}
