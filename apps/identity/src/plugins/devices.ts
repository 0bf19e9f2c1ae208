import { includeHidden, maskIp } from '@pipp/service-kit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { createHash, randomUUID } from 'node:crypto';
import { assessRisk, describeUserAgent, ipNetwork, ipPrefix, type RiskAssessment } from '../domain/risk.js';
import { newId } from './keys.js';
import type { SignInRecord } from './models.js';
import type { TokenPair } from './sessions.js';

const DAY_MS = 86_400_000;

/** Device signals of one request (policy 2.4.1(3)), collected under the security purpose. */
export interface DeviceSignals {
  deviceId?: string | undefined;
  userAgent: string;
  ip: string;
}

export interface Assessed {
  assessment: RiskAssessment;
  deviceKey: string;
  label: { userAgent: string; ipPrefix: string; network: string };
  deviceId?: string | undefined;
}

export interface Devices {
  /** Reads the request's device signals (client device id from the body, user agent, client IP). */
  signals(request: FastifyRequest, deviceId?: string): DeviceSignals;
  /** Computes the explainable risk score of a sign-in from the account's device history. */
  assess(subjectId: string, s: DeviceSignals): Promise<Assessed>;
  /**
   * Completes a sign-in: records the device (a new one triggers a `new-device-sign-in` notice to the
   * subject through the outbox), records the assessment with its retention period, opens a session.
   */
  complete(o: { subjectId: string; kind: 'subject' | 'staff'; role: 'subject' | 'operator' | 'dpo'; method: SignInRecord['method']; assessed: Assessed }): Promise<TokenPair>;
  /** Records an assessment that led to a code challenge; returns its id. */
  recordChallenge(subjectId: string, method: SignInRecord['method'], assessed: Assessed): Promise<string>;
  /** Records a failed sign-in of an existing account (feeds the recent-failures factor). */
  recordFailure(subjectId: string, method: SignInRecord['method'], s: DeviceSignals): Promise<void>;
}

declare module 'fastify' {
  interface FastifyInstance {
    devices: Devices;
  }
}

export const devicesPlugin = fp(async function devices(app: FastifyInstance) {
  const { devices, signIns } = app.models;
  const keyOf = (subjectId: string, s: DeviceSignals) => createHash('sha256')
    .update(s.deviceId ? `${subjectId}|id|${s.deviceId}` : `${subjectId}|ua|${s.userAgent}|${ipPrefix(s.ip)}`)
    .digest('hex').slice(0, 40);

  const record = async (subjectId: string, outcome: SignInRecord['outcome'], method: SignInRecord['method'], a: RiskAssessment, deviceKey?: string, prefix?: string) => {
    const now = new Date();
    const id = newId('sgn');
    await signIns.create({
      _id: id, subjectId, at: now, outcome, method, score: a.score, factors: a.factors,
      ...(deviceKey ? { deviceId: `dev_${deviceKey}` } : {}), ...(prefix ? { ipPrefix: prefix } : {}),
      purpose: 'security', legalBasis: 'service-security', retentionUntil: app.retentionPeriods.until('device-info', now),
    });
    return id;
  };

  const api: Devices = {
    signals(request, deviceId) {
      const ua = String(request.headers['user-agent'] ?? '').slice(0, 512);
      return { deviceId, userAgent: ua, ip: request.ip };
    },

    async assess(subjectId, s) {
      const deviceKey = keyOf(subjectId, s);
      const label = { userAgent: s.userAgent, ipPrefix: ipPrefix(s.ip), network: ipNetwork(s.ip) };
      const known = await devices.find({ subjectId }, { deviceKey: 1, network: 1 }).lean();
      const since = new Date(Date.now() - DAY_MS);
      const lastSuccess = await signIns.findOne({ subjectId, outcome: 'success' }, { at: 1 }).sort({ at: -1 }).lean();
      const failureFloor = lastSuccess && lastSuccess.at > since ? lastSuccess.at : since;
      const recentFailures = await signIns.countDocuments({ subjectId, outcome: 'failed', at: { $gt: failureFloor } });
      const assessment = assessRisk({
        knownDevice: known.some((d) => d.deviceKey === deviceKey),
        hasDeviceId: !!s.deviceId,
        knownNetwork: known.some((d) => d.network === label.network),
        hasHistory: known.length > 0,
        recentFailures,
      });
      return { assessment, deviceKey, label, deviceId: s.deviceId };
    },

    async complete(o) {
      const now = new Date();
      const { deviceKey, label } = o.assessed;
      const id = `dev_${deviceKey}`;
      const seen = await devices.findOneAndUpdate(
        { _id: id },
        { $set: { lastSeenAt: now, userAgent: label.userAgent, ipPrefix: label.ipPrefix, network: label.network, retentionUntil: app.retentionPeriods.until('device-info', now) }, $inc: { signIns: 1 } },
        { new: true },
      ).select(includeHidden(devices)).lean();
      if (!seen) {
        const notify = o.kind === 'subject' && o.method !== 'registration';
        const entries = notify ? [app.outbox.entry('privacy.notification.requested', {
          subject: o.subjectId,
          payload: {
            notificationId: `ntf_${randomUUID().replace(/-/g, '')}`,
            kind: 'new-device-sign-in',
            requestedBy: 'identity',
            audience: { subjectIds: [o.subjectId] },
            title: 'New sign-in to your account',
            body: `Your account was signed in from a new device (${describeUserAgent(label.userAgent)}, network ${label.ipPrefix}) at ${now.toISOString()}. `
              + 'If this was not you, end that session in Account settings and report the account as leaked.',
            elements: { device: describeUserAgent(label.userAgent), network: label.ipPrefix, at: now.toISOString() },
            clause: '2.4.1(3)',
          },
        })] : [];
        try {
          await app.outbox.insert(devices, {
            _id: id, subjectId: o.subjectId, kind: o.kind, deviceKey, userAgent: label.userAgent, ipPrefix: label.ipPrefix, network: label.network,
            firstSeenAt: now, lastSeenAt: now, signIns: 1, purpose: 'security', legalBasis: 'service-security',
            retentionUntil: app.retentionPeriods.until('device-info', now),
          }, entries);
        } catch (err) {
          if ((err as { code?: number }).code !== 11000) throw err; // the same new device, twice at once
        }
      }
      await record(o.subjectId, 'success', o.method, o.assessed.assessment, deviceKey, label.ipPrefix);
      return app.sessions.start({
        subjectId: o.subjectId, kind: o.kind, role: o.role, deviceId: id, userAgent: label.userAgent, ipPrefix: label.ipPrefix,
      });
    },

    recordChallenge: (subjectId, method, assessed) => record(subjectId, 'code-required', method, assessed.assessment, assessed.deviceKey, assessed.label.ipPrefix),

    async recordFailure(subjectId, method, s) {
      await record(subjectId, 'failed', method, { score: 0, factors: [] }, undefined, maskIp(s.ip) ? ipPrefix(s.ip) : undefined);
    },
  };
  app.decorate('devices', api);
}, { name: 'identity-devices', dependencies: ['identity-models', 'identity-sessions', 'identity-retention-periods'] });
