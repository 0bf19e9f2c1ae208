import { AuthConfigProperties, defineConfig } from '@pipp/service-kit';
import type { Static } from '@sinclair/typebox';

/**
 * Configuration of the retention service, from the environment (docs/configuration.md): the kit's base
 * settings, the identity key set to verify tokens with, and this service's own.
 */
export const ConfigSchema = defineConfig({ ...AuthConfigProperties }, { PORT: 4004, MONGO_DB: 'pipp_retention' });
export type Config = Static<typeof ConfigSchema>;
