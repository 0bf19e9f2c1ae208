export * from './authority.js';
export * from './env.js';
export * from './kafka.js';
export * from './mongo.js';
export * from './openapi.js';
export * from './stats.js';
export * from './system.js';
export { localSecrets } from '@pipp/infra';
