import type { TSchema } from '@sinclair/typebox';
import type { ServiceName } from '../services.js';

/**
 * Declares an event type: its current schema version, payload schema and who produces and consumes
 * it. The topic of an event is its type (prefixed by the deployment's topic prefix, see topics.ts).
 * Within a version only additive, optional changes are allowed; a breaking change gets a new version
 * and an entry in `upcasters` that turns the previous version's payload into the new one.
 */
export interface EventDefinition<P extends TSchema = TSchema> {
  version: number;
  description: string;
  producers: readonly ServiceName[];
  consumers: readonly ServiceName[];
  payload: P;
  /** Keyed by the version they upgrade from. */
  upcasters?: Record<number, (payload: unknown) => unknown>;
  /** Topic settings (Kafka topic configs, e.g. `retention.ms`), applied when the topic is created. */
  topicConfig?: Record<string, string>;
}

export function defineEvent<P extends TSchema>(def: EventDefinition<P>): EventDefinition<P> {
  return def;
}
