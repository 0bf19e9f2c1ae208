import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ACCOUNT_NAME_KEY_VERSION, accountNameKey } from '../domain/profile.js';

/**
 * Moves account-name reservations made under an earlier key function to the current key of the name
 * each holder's profile shows, once per key version (recorded in `migrations`), so names reserved
 * before a change of `accountNameKey` keep blocking their look-alikes. A reservation whose holder shows
 * no name (or is erased) is dropped. Where two holders' names now share a key, the first keeps it and
 * the other keeps its old reservation (logged by subject id, to be settled by hand). Returns the counts.
 */
export async function rekeyAccountNames(app: FastifyInstance): Promise<{ moved: number; dropped: number; conflicts: string[] }> {
  const { accountNames: names, accounts, migrations } = app.models;
  const done = { moved: 0, dropped: 0, conflicts: [] as string[] };
  if ((await migrations.findById('account-name-key').lean())?.version === ACCOUNT_NAME_KEY_VERSION) return done;
  for (const r of await names.find({}).lean()) {
    const holder = await accounts.findOne({ _id: r.subjectId, status: 'active' }, { 'profile.accountName': 1 }).lean();
    const name = holder?.profile?.accountName;
    if (!name) {
      done.dropped += (await names.deleteOne({ _id: r._id })).deletedCount;
      continue;
    }
    const key = accountNameKey(name);
    if (key === r._id) continue;
    const owner = (await names.findOneAndUpdate({ _id: key }, { $setOnInsert: { subjectId: r.subjectId } }, { upsert: true, new: true }).lean())!;
    if (owner.subjectId !== r.subjectId) {
      done.conflicts.push(r.subjectId);
      continue;
    }
    await names.deleteOne({ _id: r._id });
    done.moved += 1;
  }
  await migrations.updateOne({ _id: 'account-name-key' }, { $set: { version: ACCOUNT_NAME_KEY_VERSION, at: new Date() } }, { upsert: true });
  return done;
}

/** Runs `rekeyAccountNames` at start-up, before the service answers. */
export const accountNamesPlugin = fp(async function accountNames(app: FastifyInstance) {
  app.addHook('onReady', async () => {
    const r = await rekeyAccountNames(app);
    if (r.moved || r.dropped) app.log.info({ moved: r.moved, dropped: r.dropped }, 'account-name reservations moved to the current key');
    if (r.conflicts.length) app.log.warn({ subjectIds: r.conflicts }, 'account names that now look alike: both holders keep their names; settle by hand');
  });
}, { name: 'identity-account-names', dependencies: ['identity-models'] });
