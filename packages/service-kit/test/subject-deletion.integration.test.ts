// subjectDeletion on the real database: erasures requested together delete their subjects' documents
// with one read and one delete, report each subject's count, and leave other subjects' data alone.
import { dropDatabase, dropTopics, isolatedEnv, TestAuthority } from '@pipp/testing';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { subjectDeletion } from '../src/index.js';
import { startDemoApp } from './fixtures/demo-app.js';

let authority: TestAuthority;
let env: Record<string, string>;
let app: Awaited<ReturnType<typeof startDemoApp>>;
beforeAll(async () => {
  authority = await TestAuthority.start();
  env = isolatedEnv('subjdel', { AUTH_JWKS_URL: authority.jwksUrl });
  app = await startDemoApp(env);
});
afterAll(async () => {
  await app?.close();
  await authority.close();
  await dropDatabase(env.MONGO_DB!);
  await dropTopics(env.KAFKA_TOPIC_PREFIX!);
});

it('erases the subjects asked for together with one read and one delete, counting each subject\'s documents', async () => {
  const notes = app.models.notes;
  await notes.create([
    { _id: 'd-a1', subjectId: 'subj-a', text: 'x' }, { _id: 'd-a2', subjectId: 'subj-a', text: 'x' },
    { _id: 'd-b1', subjectId: 'subj-b', text: 'x' }, { _id: 'd-k1', subjectId: 'subj-keep', text: 'x' },
  ]);
  const deletion = subjectDeletion(notes);
  const find = vi.spyOn(notes, 'find');
  const deleteMany = vi.spyOn(notes, 'deleteMany');

  expect(await Promise.all(['subj-a', 'subj-b', 'subj-none'].map((s) => deletion.erase(s)))).toEqual([2, 1, 0]);
  expect(find).toHaveBeenCalledTimes(1);
  expect(deleteMany).toHaveBeenCalledTimes(1);
  expect((await notes.find({}).lean()).map((d) => d._id)).toEqual(['d-k1']);

  // Nothing found: nothing deleted, no delete sent.
  expect(await Promise.all([deletion.erase('subj-a'), deletion.erase('subj-b')])).toEqual([0, 0]);
  expect(deleteMany).toHaveBeenCalledTimes(1);

  // Alone: one delete, its own count.
  await notes.create([{ _id: 'd-c1', subjectId: 'subj-c', text: 'x' }, { _id: 'd-c2', subjectId: 'subj-c', text: 'x' }]);
  const finds = find.mock.calls.length;
  expect(await deletion.erase('subj-c')).toBe(2);
  expect(find).toHaveBeenCalledTimes(finds);
  expect(deleteMany).toHaveBeenCalledTimes(2);
  expect((await notes.find({}).lean()).map((d) => d._id)).toEqual(['d-k1']);
});
