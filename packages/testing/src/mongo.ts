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
