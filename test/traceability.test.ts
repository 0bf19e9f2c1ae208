// docs/policy-traceability.md stays honest: every clause of the policy has a row; every path it names
// exists; every test it names is in the file it names; "enforced" rows name at least one test.
import { CLAUSE_IDS } from '@pipp/contracts';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const doc = readFileSync(`${root}/docs/policy-traceability.md`, 'utf8');
const policy = readFileSync(`${root}/apps/consent/policy/privacy-policy.txt`, 'utf8');

interface Row { clause: string; code: string; tests: string; status: string }
const rows: Row[] = doc.split('\n')
  .filter((l) => /^\| `[^`]+` \|/.test(l))
  .map((l) => {
    const cells = l.split(' | ');
    return { clause: cells[0]!.replace(/^\| `|`$/g, ''), code: cells[3] ?? '', tests: cells[4] ?? '', status: (cells[5] ?? '').replace(/ \|$/, '') };
  });

/** `path` and optional `path` › "test name" references in a cell. */
function references(cell: string) {
  return [...cell.matchAll(/`([^`]+)`(?: › "([^"]+)")?/g)].map((m) => ({ path: m[1]!, name: m[2] }));
}

describe('policy traceability document', () => {
  it('has a row for every clause of the policy, and only those', () => {
    const listed = rows.map((r) => r.clause);
    expect(listed.filter((c) => !CLAUSE_IDS.includes(c as never))).toEqual([]);
    expect(CLAUSE_IDS.filter((c) => !listed.includes(c))).toEqual([]);
  });

  it('knows every numbered clause of the policy text', () => {
    const numbered = [...policy.matchAll(/^(\d+(?:\.\d+)+)\s/gm)].map((m) => m[1]!);
    expect(numbered.length).toBeGreaterThan(30);
    expect(numbered.filter((n) => !CLAUSE_IDS.includes(n as never))).toEqual([]);
  });

  it('gives every row a status: enforced, partial or gap', () => {
    for (const r of rows) expect(r.status, r.clause).toMatch(/^(enforced|partial: .+|gap: .+|heading)$/);
  });

  it('names only paths that exist and tests that exist in them', () => {
    const problems: string[] = [];
    for (const r of rows) {
      for (const ref of [...references(r.code), ...references(r.tests)]) {
        const file = `${root}/${ref.path}`;
        if (!existsSync(file)) { problems.push(`${r.clause}: ${ref.path} does not exist`); continue; }
        if (ref.name && !readFileSync(file, 'utf8').includes(ref.name)) problems.push(`${r.clause}: no test "${ref.name}" in ${ref.path}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('backs every enforced clause with at least one test', () => {
    const bare = rows.filter((r) => r.status === 'enforced' && references(r.tests).length === 0).map((r) => r.clause);
    expect(bare).toEqual([]);
  });
});
