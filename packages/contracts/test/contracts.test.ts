// The shared contracts: every event type validates its payload when produced and when consumed, and
// the shared vocabularies (clauses, legal bases, categories) are consistent with each other.
import { describe, expect, it } from 'vitest';
import {
  CLAUSE_IDS, CountryCode, DATA_CATEGORIES, EVENTS, EVENT_TYPES, EventValidationError, LEGAL_BASES, SERVICES, compile, createEvent,
  isClauseId, isCountryCode, parseEvent, topicFor,
} from '../src/index.js';

const registered = () => createEvent('privacy.subject.registered', {
  source: 'identity',
  subject: 'sub-1',
  payload: { subjectId: 'sub-1', registeredAt: new Date().toISOString(), policyAcknowledged: { documentId: 'general', version: 1 } },
});

describe('country codes', () => {
  it('admits the ISO 3166-1 codes of countries and territories, not user-assigned codes or groupings', () => {
    for (const c of ['CN', 'HK', 'MO', 'TW', 'US', 'DE', 'XK']) expect(isCountryCode(c), c).toBe(true);
    // A recipient "in" ZZ was recorded as a cross-border transfer to nowhere.
    for (const c of ['ZZ', 'AA', 'QQ', 'XZ', 'EU', 'UN', 'QO', 'XA', 'cn', 'CHN', '']) expect(isCountryCode(c), c).toBe(false);
    const valid = compile(CountryCode);
    expect([valid('CN'), valid('ZZ')]).toEqual([true, false]);
  });
});

describe('events', () => {
  it('builds a complete envelope and round-trips it through parseEvent', () => {
    const event = registered();
    expect(event).toMatchObject({ type: 'privacy.subject.registered', version: 1, source: 'identity', subject: 'sub-1' });
    expect(event.correlationId).toBe(event.id);
    const parsed = parseEvent(Buffer.from(JSON.stringify(event)));
    expect(parsed).toEqual({ ok: true, event });
  });

  it('refuses to produce an event whose payload breaks its schema', () => {
    expect(() => createEvent('privacy.subject.registered', {
      source: 'identity',
      payload: { subjectId: 'has spaces', registeredAt: 'yesterday', policyAcknowledged: { documentId: 'general', version: 0 } },
    })).toThrow(EventValidationError);
  });

  it('rejects, with a reason, what a consumer must not act on', () => {
    const good = registered();
    const cases: [unknown, RegExp][] = [
      ['{not json', /not JSON/],
      [JSON.stringify({ ...good, id: 'not-a-uuid' }), /bad envelope: \/id/],
      [JSON.stringify({ ...good, extra: 1 }), /bad envelope/],
      [JSON.stringify({ ...good, type: 'privacy.unknown' }), /unknown event type/],
      [JSON.stringify({ ...good, version: 99 }), /newer than this consumer knows/],
      [JSON.stringify({ ...good, payload: { ...good.payload, subjectId: 5 } }), /\/payload\/subjectId/],
      // RFC 3339 admits a leap second; JavaScript cannot hold it (an Invalid Date in the handler).
      [JSON.stringify({ ...good, payload: { ...good.payload, registeredAt: '2026-12-31T23:59:60Z' } }), /\/payload\/registeredAt/],
      [null, /no value/],
    ];
    for (const [value, reason] of cases) {
      const r = parseEvent(value as string);
      expect(r.ok, String(value)).toBe(false);
      if (!r.ok) expect(r.reason).toMatch(reason);
    }
  });

  it('declares producers and consumers among the known services, and topics per type', () => {
    for (const type of EVENT_TYPES) {
      const def = EVENTS[type];
      for (const s of [...def.producers, ...def.consumers]) expect(SERVICES).toContain(s);
      expect(def.version).toBeGreaterThanOrEqual(1);
      expect(topicFor(type, 't.')).toBe(`t.${type}`);
    }
  });
});

describe('vocabularies', () => {
  it('ties every legal basis to clauses of the policy', () => {
    for (const [basis, def] of Object.entries(LEGAL_BASES)) {
      expect(isClauseId(def.clause), basis).toBe(true);
      if (def.sharingClause) expect(isClauseId(def.sharingClause), basis).toBe(true);
    }
  });

  it('covers each exception of 2.4.2(4) (i–x) and 3.4 (3.4.1–3.4.7) with a legal basis', () => {
    const clauses = new Set(Object.values(LEGAL_BASES).flatMap((d) => [d.clause, d.sharingClause]));
    for (const item of ['i', 'ii', 'iii', 'iv', 'v', 'vi', 'vii', 'viii', 'ix', 'x']) expect(clauses).toContain(`2.4.2(4)${item}`);
    for (let n = 1; n <= 7; n += 1) expect(clauses).toContain(`3.4.${n}`);
  });

  it('names a holding service for every data category', () => {
    for (const [category, def] of Object.entries(DATA_CATEGORIES)) {
      expect(def.holders.length, category).toBeGreaterThan(0);
      for (const h of def.holders) expect(SERVICES).toContain(h);
    }
  });

  it('has unique clause ids', () => {
    expect(new Set(CLAUSE_IDS).size).toBe(CLAUSE_IDS.length);
  });
});
