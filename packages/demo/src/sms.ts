// The subjects' phones: the one-time codes identity sends are read where its local SMS sink records
// them (identity's `sms_sink` collection, SMS_PROVIDER=sink), as the tests do. Nothing else is read
// from any database: everything the demo does goes through the gateway.
import { MongoClient } from 'mongodb';

export class SmsInbox {
  private constructor(private readonly client: MongoClient, private readonly db: string) {}

  static async open(mongoUrl: string, identityDb: string): Promise<SmsInbox> {
    const client = await new MongoClient(mongoUrl, { serverSelectionTimeoutMS: 5000 }).connect();
    return new SmsInbox(client, identityDb);
  }

  /** The 6-digit code in the newest SMS to `e164` sent after `after`; waits up to `timeoutMs`. */
  async code(e164: string, after: Date, timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const msg = await this.client.db(this.db).collection('sms_sink').find({ to: e164, at: { $gt: after } }).sort({ at: -1 }).limit(1).next();
      const m = msg ? /\b(\d{6})\b/.exec(String(msg.text)) : null;
      if (m) return m[1]!;
      if (Date.now() > deadline) throw new Error(`no SMS code reached ${e164.slice(0, 6)}… within ${timeoutMs / 1000} s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** How many SMS `e164` received after `after` (any text). */
  async count(e164: string, after: Date): Promise<number> {
    return this.client.db(this.db).collection('sms_sink').countDocuments({ to: e164, at: { $gt: after } });
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
