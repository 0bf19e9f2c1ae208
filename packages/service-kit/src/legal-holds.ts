import type { DataCategory, EventPayload } from '@pipp/contracts';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Schema } from 'mongoose';
import { heldBySubject, type HeldSubjects } from './sweep-holds.js';

/** A legal hold on a subject's PI as the retention service announced it (policy 4.1). */
export interface SubjectHold {
  /** The hold's id. */
  _id: string;
  subjectId: string;
  /** Empty: every category. */
  categories: DataCategory[];
  legalBasis: string;
  evidenceRef: string;
  status: 'active' | 'released';
  /** The hold's end (`until`); the record is forgotten after it. */
  purgeAt: Date;
}

/** One `privacy.legal-hold.changed` payload. */
export type HoldChange = EventPayload<'privacy.legal-hold.changed'>;

/** The legal holds a service was told of (see legalHoldsPlugin). */
export interface LegalHolds {
  /** The subject's holds in force at `now`, the one ending last first. */
  active(subjectId: string, now?: Date): Promise<SubjectHold[]>;
  /**
   * What the holds in force cover, one entry per subject, together with `also` (a sweep request's own
   * list, when it carries one): what a retention sweep must leave (policy 4.1). Forgets holds past
   * their end.
   */
  heldSubjects(also?: HeldSubjects, now?: Date): Promise<NonNullable<HeldSubjects>>;
}

declare module 'fastify' {
  interface FastifyInstance {
    legalHolds: LegalHolds;
  }
}

/**
 * Keeps the legal holds the retention service places and releases (`privacy.legal-hold.changed`,
 * policy 4.1; PIPL art. 47) in `subject_holds`, for what deletes PI outside an erasure request (expiry
 * sweeps, deletions after a consent withdrawal), however many there are: a sweep request can name at
 * most MAX_HELD_SUBJECTS of them. A release is final: the hold is kept, released, to its own end, so
 * an `active` delivered after it (out of order, or a replay of the topic) changes nothing. `onReleased`
 * runs after a release is stored (identity purges what it kept isolated under the hold).
 */
export const legalHoldsPlugin = fp(async function legalHolds(app: FastifyInstance, opts: { onReleased?: (hold: HoldChange) => Promise<void> }) {
  const model = app.mongo.model<SubjectHold>('PippSubjectHold', new Schema<SubjectHold>({
    _id: String, subjectId: String, categories: [String], legalBasis: String, evidenceRef: String, status: String, purgeAt: Date,
  }, { collection: 'subject_holds', versionKey: false }).index({ subjectId: 1 }));
  app.kafka.consume({
    name: 'legal-holds',
    handlers: {
      'privacy.legal-hold.changed': async (event) => {
        const h = event.payload;
        if ((await model.findById(h.holdId, { status: 1 }).lean())?.status === 'released') return;
        await model.updateOne({ _id: h.holdId }, {
          $set: { subjectId: h.subjectId, categories: h.categories, legalBasis: h.legalBasis, evidenceRef: h.evidenceRef, status: h.status, purgeAt: new Date(h.until) },
        }, { upsert: true });
        if (h.status === 'released') await opts.onReleased?.(h);
      },
    },
  });
  const api: LegalHolds = {
    async active(subjectId, now = new Date()) {
      return (await model.find({ subjectId }).lean())
        .filter((h) => h.status === 'active' && h.purgeAt > now)
        .sort((a, b) => b.purgeAt.getTime() - a.purgeAt.getTime());
    },
    async heldSubjects(also, now = new Date()) {
      await model.deleteMany({ purgeAt: { $lt: now } });
      const mine = await model.find({ status: 'active' }, { subjectId: 1, categories: 1 }).lean();
      return heldBySubject([...mine, ...(also ?? [])]);
    },
  };
  app.decorate('legalHolds', api);
}, { name: 'pipp-legal-holds', dependencies: ['pipp-kafka', 'pipp-mongo'] });
