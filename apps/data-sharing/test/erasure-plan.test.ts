// Planning the erasure of sharing records and the notices to recipients (policy 4.2 recipients paragraph).
import { describe, expect, it } from 'vitest';
import { planShareErasure, recordFate, type LegalHold } from '../src/domain/erasure.js';

const shares = [
  { id: 's1', recipientId: 'r-a', categories: ['profile' as const, 'phone-number' as const] },
  { id: 's2', recipientId: 'r-b', categories: ['profile' as const] },
  { id: 's3', recipientId: 'r-c', categories: ['health' as const] },
];
const hold: LegalHold = { category: 'sharing-record', legalBasis: 'legal-obligation', evidenceRef: 'Law Y art. 2', purgeAt: '2030-01-01T00:00:00.000Z' };

describe('planShareErasure', () => {
  it('for an account erases every record and notifies every recipient', () => {
    const p = planShareErasure({ kind: 'account' }, [], shares, new Map());
    expect(p.erase).toEqual(['s1', 's2', 's3']);
    expect(p.notify.map((n) => [n.recipientId, n.categories])).toEqual([['r-a', ['phone-number', 'profile']], ['r-b', ['profile']], ['r-c', ['health']]]);
  });

  it('for some categories notifies only about those and keeps what the recipient still holds', () => {
    const p = planShareErasure({ kind: 'categories', categories: ['profile'] }, [], shares, new Map());
    expect(p.notify.map((n) => [n.recipientId, n.categories])).toEqual([['r-a', ['profile']], ['r-b', ['profile']]]);
    expect(p.erase).toEqual(['s2']);
    expect(p.trim).toEqual([{ id: 's1', categories: ['phone-number'] }]);
  });

  it('does not ask a recipient holding the subject\'s independent authorization, but records it', () => {
    const p = planShareErasure({ kind: 'account' }, [], shares, new Map([['r-b', 'ia-1']]));
    expect(p.notify.map((n) => n.recipientId)).toEqual(['r-a', 'r-c']);
    expect(p.notAsked).toEqual([{ recipientId: 'r-b', categories: ['profile'], authorizationId: 'ia-1' }]);
    expect(p.erase).toContain('s2');
  });

  it('keeps records under a sharing-record legal hold, and still notifies recipients', () => {
    const p = planShareErasure({ kind: 'account' }, [hold], shares, new Map());
    expect(p.erase).toEqual([]);
    expect(p.hold.map((h) => h.id)).toEqual(['s1', 's2', 's3']);
    expect(p.notify).toHaveLength(3);
  });

  it('recordFate finds scope and holds for other records', () => {
    expect(recordFate({ kind: 'categories', categories: ['profile'] }, [], 'indirect-collection', ['health'])).toEqual({ inScope: false });
    expect(recordFate({ kind: 'categories', categories: ['indirect-collection'] }, [], 'indirect-collection', ['health'])).toEqual({ inScope: true });
    expect(recordFate({ kind: 'account' }, [{ ...hold, category: 'health' }], 'indirect-collection', ['health'])).toMatchObject({ inScope: true, hold: { category: 'health' } });
  });
});
