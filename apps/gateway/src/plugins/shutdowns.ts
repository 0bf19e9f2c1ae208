import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Schema, type Model } from 'mongoose';

/** A function that stopped operating (policy 2.4.2(5)), as the gateway learned it. */
export interface FunctionShutdown {
  /** The function id (`x-pipp-function` of the routes that collect data for it). */
  _id: string;
  shutdownId: string;
  effectiveAt: Date;
}

/** Functions that stopped operating, as far as the gateway knows. */
export interface Shutdowns {
  model: Model<FunctionShutdown>;
  /** True once `functionId` is shut down and its `effectiveAt` (ms) has passed. */
  isShutDown(functionId: string, now?: number): boolean;
  /** Records a shutdown (idempotent: the same function again only moves its effectiveAt). */
  record(s: { functionId: string; shutdownId: string; effectiveAt: string }): Promise<void>;
}

declare module 'fastify' {
  interface FastifyInstance {
    shutdowns: Shutdowns;
  }
}

/**
 * The shut-down functions (collection `function_shutdowns` of the gateway's own database, so that a
 * restart keeps refusing), mirrored in memory for the per-request check. Fed by
 * `events/shutdowns.ts`.
 */
export const shutdownsPlugin = fp(async function shutdowns(app: FastifyInstance) {
  const model = app.mongo.model<FunctionShutdown>('FunctionShutdown', new Schema<FunctionShutdown>({
    _id: { type: String, required: true },
    shutdownId: { type: String, required: true },
    effectiveAt: { type: Date, required: true },
  }, { collection: 'function_shutdowns', versionKey: false }));
  const known = new Map<string, number>();

  app.decorate('shutdowns', {
    model,
    isShutDown: (functionId: string, now = Date.now()) => {
      const at = known.get(functionId);
      return at !== undefined && at <= now;
    },
    async record({ functionId, shutdownId, effectiveAt }) {
      await model.updateOne({ _id: functionId }, { $set: { shutdownId, effectiveAt: new Date(effectiveAt) } }, { upsert: true });
      known.set(functionId, Date.parse(effectiveAt));
    },
  } satisfies Shutdowns);

  app.addHook('onReady', async () => {
    for (const s of await model.find().lean()) if (!known.has(s._id)) known.set(s._id, s.effectiveAt.getTime());
  });
}, { name: 'gateway-shutdowns' });
