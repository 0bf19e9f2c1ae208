// Guard: no source file of the repository uses a MongoDB feature that FerretDB 1.24 lacks or ignores.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findNonPortableMongo } from '../src/index.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

function sources(dir: string): string[] {
  let out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (['node_modules', 'dist', '.turbo', 'types'].includes(name)) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(sources(p));
    else if (/\.(ts|mts|js|mjs)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

describe('MongoDB portability guard', () => {
  it('flags what FerretDB 1.24 rejects or silently ignores', () => {
    const bad = [
      "Model.aggregate([{ $lookup: { from: 'x' } }])",
      "await conn.startSession()",
      "schema.index({ at: 1 }, { expireAfterSeconds: 60 })",
      "new Schema({ at: { type: Date, expires: 3600 } })",
      "Model.updateOne({ 'items.id': 1 }, { $set: { 'items.$.done': true } })",
      "Model.updateOne({}, { $pull: { items: { id: { $in: ids } } } })",
      "Model.find({ items: { $elemMatch: { id: 1 } } })",
      "schema.index({ body: 'text' })",
      "await Model.bulkWrite(ops, { ordered: false })",
    ];
    for (const line of bad) expect(findNonPortableMongo(line), line).not.toHaveLength(0);
    const fine = [
      "Model.updateOne({ _id }, { $pullAll: { _outbox: entries }, $set: { 'participants.identity.status': 'done' } })",
      "// we never use $lookup here",
      "Model.aggregate([{ $match: {} }, { $group: { _id: '$a', n: { $sum: 1 } } }])",
      "sign({ expiresIn: 300 })",
      "await bulkWriteChunked(ops, (chunk) => Model.bulkWrite(chunk, { ordered: false }))",
    ];
    for (const line of fine) expect(findNonPortableMongo(line), line).toHaveLength(0);
  });

  it('finds none in the repository sources', () => {
    // Production code only: tests feed hostile inputs (operator keys and the like) on purpose.
    const files = ['apps', 'packages', 'infra', 'scripts'].flatMap((d) => {
      try { return sources(join(root, d)); } catch { return []; }
    }).filter((f) => !/[\\/]test[\\/]/.test(relative(root, f)) && !f.endsWith('portability.ts'));
    expect(files.length).toBeGreaterThan(10);
    const problems = files.flatMap((f) => findNonPortableMongo(readFileSync(f, 'utf8')).map((p) => `${relative(root, f)}:${p.line} ${p.why}: ${p.text}`));
    expect(problems).toEqual([]);
  });
});
