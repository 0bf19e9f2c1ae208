// The last one-time codes and texts identity "sent" by SMS in development (identity's SMS sink:
// collection `sms_sink` of its database), newest first. For a developer trying the API by hand.
//   make sms                      (the last 5)
//   node scripts/sms.mjs 20 +8613912345678
// MONGO_URL (default the dev FerretDB, mongodb://127.0.0.1:27017) and IDENTITY_MONGO_DB (default
// pipp_identity) point elsewhere.
import { MongoClient } from 'mongodb';

const [limit = '5', to] = process.argv.slice(2);
const client = await MongoClient.connect(process.env.MONGO_URL ?? 'mongodb://127.0.0.1:27017', { serverSelectionTimeoutMS: 3000 });
try {
  const filter = to ? { to } : {};
  const messages = await client.db(process.env.IDENTITY_MONGO_DB ?? 'pipp_identity').collection('sms_sink')
    .find(filter, { projection: { _id: 0, to: 1, purpose: 1, text: 1, at: 1 } }).sort({ at: -1 }).limit(Number(limit)).toArray();
  if (!messages.length) console.log('no SMS recorded yet (is `make dev` running, and was a code requested?)');
  for (const m of messages) console.log(`${m.at.toISOString()}  ${m.to}  ${m.purpose}  ${m.text}`);
} finally {
  await client.close();
}
