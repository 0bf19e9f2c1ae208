// What a retention sweep leaves for legal holds (policy 4.1): the filter each participant narrows.
import { describe, expect, it } from 'vitest';
import { heldBySubject, heldSubjectIds, leavingHeld } from '../src/index.js';

describe('leavingHeld', () => {
  const held = [{ subjectId: 'a', categories: ['device-info' as const] }, { subjectId: 'b', categories: [] }, { subjectId: 'a', categories: ['activity-log' as const] }];

  it('excludes the subjects whose hold covers the category (no categories: all), once each', () => {
    expect(heldSubjectIds(held, 'device-info')).toEqual(['a', 'b']);
    expect(heldSubjectIds(held, 'sharing-record')).toEqual(['b']);
    expect(heldSubjectIds(undefined, 'device-info')).toEqual([]);
  });

  it('keeps a condition already on the subject field, and leaves the filter alone without holds', () => {
    const at = { $lt: new Date(0) };
    expect(leavingHeld({ at, subjectId: { $ne: 'anonymous' } }, held, 'device-info')).toEqual({ at, subjectId: { $ne: 'anonymous', $nin: ['a', 'b'] } });
    expect(leavingHeld({ at, subjectId: 'x' }, held, 'device-info')).toEqual({ at, subjectId: { $eq: 'x', $nin: ['a', 'b'] } });
    expect(leavingHeld({ at }, held, 'device-info', 'owner')).toEqual({ at, owner: { $nin: ['a', 'b'] } });
    const filter = { at };
    expect(leavingHeld(filter, undefined, 'device-info')).toBe(filter);
  });
});

describe('heldBySubject (4.1)', () => {
  it('names each held subject once, with the union of its holds\' categories, or none (every category) when one hold covers all', () => {
    expect(heldBySubject([
      { subjectId: 'a', categories: ['device-info'] }, { subjectId: 'a', categories: ['activity-log', 'device-info'] },
      { subjectId: 'b', categories: ['profile'] }, { subjectId: 'b', categories: [] }, { subjectId: 'b', categories: ['session'] },
    ])).toEqual([{ subjectId: 'a', categories: ['activity-log', 'device-info'] }, { subjectId: 'b', categories: [] }]);
  });
});
