import type { Static } from '@sinclair/typebox';
import type { ServiceName } from '../services.js';
import { consentEvents } from './consent.js';
import { dataSharingEvents } from './data-sharing.js';
import type { EventDefinition } from './define.js';
import { identityEvents } from './identity.js';
import { incidentEvents } from './incident.js';
import { retentionEvents } from './retention.js';

/** Every event type of the platform, one file per producing service. */
export const EVENTS = {
  ...identityEvents,
  ...consentEvents,
  ...dataSharingEvents,
  ...retentionEvents,
  ...incidentEvents,
} as const;

export type EventType = keyof typeof EVENTS;
export const EVENT_TYPES = Object.keys(EVENTS) as EventType[];

/** The payload type of an event type (current version). */
export type EventPayload<T extends EventType> = Static<(typeof EVENTS)[T]['payload']>;

/**
 * The envelope of every message on every topic (DESIGN.md "Events"). Serialized as JSON in the
 * Kafka message value; the message key is `subject` (or `id` when there is none), so one data
 * subject's events stay in order.
 */
export interface EventEnvelope<T extends EventType = EventType> {
  /** UUID; consumers deduplicate on it. */
  id: string;
  type: T;
  /** Schema version of the payload. */
  version: number;
  source: ServiceName;
  /** ISO 8601, UTC. */
  occurredAt: string;
  /** The data subject's id, where there is one. */
  subject?: string;
  /** Id shared by every message of one flow (e.g. an erasure request), for tracing. */
  correlationId: string;
  payload: EventPayload<T>;
}

export function isEventType(type: string): type is EventType {
  return Object.hasOwn(EVENTS, type);
}

/** Event types a service produces or consumes, from their declarations: the topics it needs. */
export function eventTypesOf(service: ServiceName): EventType[] {
  return EVENT_TYPES.filter((t) => {
    const def = EVENTS[t] as EventDefinition;
    return def.producers.includes(service) || def.consumers.includes(service);
  });
}

export function eventDefinition(type: EventType): EventDefinition {
  return EVENTS[type] as EventDefinition;
}

export { defineEvent, type EventDefinition } from './define.js';
export { ConsentScopeSchema } from './consent.js';
export {
  ERASURE_GROUNDS, ErasureGroundSchema, ErasureScopeSchema, LegalHoldSchema, MAX_HELD_SUBJECTS, RESIDENCY_EXCEPTIONS, RETENTION_CLOCKS, RetentionRuleSchema,
  type ErasureGround, type ErasureScope, type ResidencyException, type RetentionClock, type RetentionRule,
} from './retention.js';
export { NOTICE_REQUIRED_ELEMENTS, NOTIFICATION_KINDS } from './incident.js';
