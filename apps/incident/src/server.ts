import { runServer } from '@pipp/service-kit';
import { buildApp, SERVICE } from './app.js';
import { ConfigSchema } from './config.js';

await runServer({ service: SERVICE, schema: ConfigSchema, build: buildApp });
