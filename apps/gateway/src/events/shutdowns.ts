import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Schema } from 'mongoose';

interface FunctionShutdown {
  /** The function id (`x-pipp-function` of the routes that collect data for it). */
  _id: string;
  shutdownId: string;
  effectiveAt: Date;
}

/** Functions that stopped operating (policy 2.4.2(5)), as far as the gateway knows. */
export interface Shutdowns {
  /** True once `functionId` is shut down and its `effectiveAt` has passed. */
  isShutDown(functionId: string, now?: number): boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    shutdowns: Shutdowns;
  }
}

/**
 * Consumes `privacy.function.shutdown` (policy 2.4.2(5): "promptly stop the activities to continue
 * collecting your personal information"): the gateway remembers each shut-down function in its own
 * database (so a restart keeps refusing) and from `effectiveAt` refuses requests that would collect
 * data for it (POST, PUT, PATCH on routes whose service declares `x-pipp-function`) with 410 citing
 * 2.4.2(5). Reading and deleting one's data stay possible. The services refuse again themselves.
 */
export const shutdownsPlugin = fp(async function shutdowns(app: FastifyInstance) {
  const model = app.mongo.model<FunctionShutdown>('FunctionShutdown', new Schema<FunctionShutdown>({
    _id: { type: String, required: true },
    shutdownId: { type: String, required: true },
    effectiveAt: { type: Date, required: true },
  }, { collection: 'function_shutdowns', versionKey: false }));
  const known = new Map<string, number>();

  app.decorate('shutdowns', {
    isShutDown: (functionId: string, now = Date.now()) => {
      const at = known.get(functionId);
      return at !== undefined && at <= now;
    },
  } satisfies Shutdowns);

  app.kafka.consume({
    name: 'function-shutdowns',
    handlers: {
      'privacy.function.shutdown': async (event) => {
        const { functionId, shutdownId, effectiveAt } = event.payload;
        await model.updateOne({ _id: functionId }, { $set: { shutdownId, effectiveAt: new Date(effectiveAt) } }, { upsert: true });
        known.set(functionId, Date.parse(effectiveAt));
      },
    },
  });

  app.addHook('onReady', async () => {
    for (const s of await model.find().lean()) known.set(s._id, s.effectiveAt.getTime());
  });
}, { name: 'gateway-shutdowns' });
