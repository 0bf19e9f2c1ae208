import { describe, expect, it } from 'vitest';
import { subjectLookup } from '../src/subject-lookup.js';

interface Doc { _id: string; subjectId: string }

/** A `find` whose queries the test answers by hand, recording the subject ids of each. */
function controlledFind(docs: Doc[]) {
  const queries: { ids: string[]; answer: () => void; fail: (err: Error) => void }[] = [];
  const find = (ids: string[]) => new Promise<Doc[]>((resolve, reject) => {
    queries.push({ ids, answer: () => resolve(docs.filter((d) => ids.includes(d.subjectId))), fail: reject });
  });
  return { find, queries };
}

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('subjectLookup', () => {
  it('answers loads made while a query runs with one next query, each subject getting only its documents', async () => {
    const docs = [{ _id: 'a1', subjectId: 'a' }, { _id: 'b1', subjectId: 'b' }, { _id: 'b2', subjectId: 'b' }, { _id: 'c1', subjectId: 'c' }];
    const { find, queries } = controlledFind(docs);
    const lookup = subjectLookup(find, (d: Doc) => d.subjectId);
    const first = lookup.load('a');
    await tick();
    expect(queries.map((q) => q.ids)).toEqual([['a']]);
    const later = [lookup.load('b'), lookup.load('c'), lookup.load('nobody')];
    await tick();
    expect(queries).toHaveLength(1); // they wait for the query in flight
    queries[0]!.answer();
    expect(await first).toEqual([{ _id: 'a1', subjectId: 'a' }]);
    await tick();
    expect(queries.map((q) => q.ids)).toEqual([['a'], ['b', 'c', 'nobody']]);
    queries[1]!.answer();
    expect(await Promise.all(later)).toEqual([[docs[1], docs[2]], [docs[3]], []]);
  });

  it('caches nothing: a later load of the same subject queries again and sees what changed', async () => {
    const docs: Doc[] = [{ _id: 'a1', subjectId: 'a' }];
    const { find, queries } = controlledFind(docs);
    const lookup = subjectLookup(find, (d: Doc) => d.subjectId);
    const before = lookup.load('a');
    await tick();
    queries[0]!.answer();
    expect(await before).toHaveLength(1);
    docs.push({ _id: 'a2', subjectId: 'a' });
    const after = lookup.load('a');
    await tick();
    queries[1]!.answer();
    expect((await after).map((d) => d._id)).toEqual(['a1', 'a2']);
  });

  it('gives a failed query\'s error to each of its loads, and the next loads query again', async () => {
    const { find, queries } = controlledFind([{ _id: 'b1', subjectId: 'b' }]);
    const lookup = subjectLookup(find, (d: Doc) => d.subjectId);
    const failing = [lookup.load('a'), lookup.load('b')];
    await tick();
    queries[0]!.fail(new Error('database down'));
    await expect(Promise.all(failing)).rejects.toThrow('database down');
    await expect(failing[1]).rejects.toThrow('database down');
    const retried = lookup.load('b');
    await tick();
    queries[1]!.answer();
    expect(await retried).toEqual([{ _id: 'b1', subjectId: 'b' }]);
  });

  it('runs a lazy query once (a mongoose query runs again each time it is awaited)', async () => {
    let runs = 0;
    const find = (ids: string[]): PromiseLike<Doc[]> => ({
      then(onFulfilled, onRejected) {
        runs += 1;
        return Promise.resolve(ids.map((id) => ({ _id: `${id}1`, subjectId: id }))).then(onFulfilled, onRejected);
      },
    });
    const lookup = subjectLookup(find, (d: Doc) => d.subjectId);
    expect(await Promise.all([lookup.load('a'), lookup.load('b')])).toEqual([[{ _id: 'a1', subjectId: 'a' }], [{ _id: 'b1', subjectId: 'b' }]]);
    expect(runs).toBe(1);
  });
});
