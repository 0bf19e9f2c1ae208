import { MongoClient } from 'mongodb';

/** A direct client on the test database server, to inspect what a service stored (or drop a test db). */
export async function withMongo<T>(fn: (client: MongoClient) => Promise<T>): Promise<T> {
  const url = process.env.MONGO_URL;
  if (!url) throw new Error('MONGO_URL is not set: run tests through vitest');
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** Drops a test database (call in afterAll). */
export async function dropDatabase(name: string): Promise<void> {
  await withMongo((c) => c.db(name).dropDatabase());
}

/** Where a PI value was found: database, collection, document id and the path inside it. */
export interface PiHit { db: string; collection: string; id: string; path: string }

/**
 * Reads every document of every collection of the given databases directly (the MongoDB driver, no
 * service code) and reports each string that contains one of the `needles` (a subject's phone number,
 * name, e-mail, free texts). `isolated(collection, doc)` names the kept-by-law records to leave out.
 */
export async function scanForPi(databases: string[], needles: string[], isolated: (collection: string, doc: Record<string, unknown>) => boolean = () => false): Promise<PiHit[]> {
  const hits: PiHit[] = [];
  const walk = (value: unknown, path: string, at: Omit<PiHit, 'path'>) => {
    if (typeof value === 'string') {
      if (needles.some((n) => value.includes(n))) hits.push({ ...at, path });
    } else if (Array.isArray(value)) {
      value.forEach((v, i) => walk(v, `${path}/${i}`, at));
    } else if (value && typeof value === 'object' && !(value instanceof Date) && !('_bsontype' in value)) {
      for (const [k, v] of Object.entries(value)) walk(v, `${path}/${k}`, at);
    }
  };
  await withMongo(async (c) => {
    for (const db of databases) {
      for (const { name } of await c.db(db).listCollections({}, { nameOnly: true }).toArray()) {
        for await (const doc of c.db(db).collection(name).find({})) {
          if (isolated(name, doc as Record<string, unknown>)) continue;
          walk(doc, '', { db, collection: name, id: String(doc._id) });
        }
      }
    }
  });
  return hits;
}
