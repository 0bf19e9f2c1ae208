// The policy parser turns the shipped general policy into exactly the clause ids every service cites
// (packages/contracts/src/clauses.ts), and handles the text's irregularities generically.
import { CLAUSE_IDS } from '@pipp/contracts';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PolicyParseError, clauseWithChildren, parsePolicy } from '../src/domain/policy-parser.js';
import { GENERAL_V1_FILE } from '../src/plugins/policies.js';

const general = parsePolicy(readFileSync(GENERAL_V1_FILE, 'utf8'));
const byId = new Map(general.map((c) => [c.id, c]));

describe('the general policy, version 1', () => {
  it('parses into exactly the clause ids of the contracts, both ways', () => {
    const parsed = general.map((c) => c.id);
    expect(parsed.filter((id) => !(CLAUSE_IDS as string[]).includes(id))).toEqual([]);
    expect(CLAUSE_IDS.filter((id) => !parsed.includes(id))).toEqual([]);
    expect(new Set(parsed).size).toBe(parsed.length);
  });

  it('keeps every paragraph of the text in some clause', () => {
    const text = readFileSync(GENERAL_V1_FILE, 'utf8').replace(/\s+/g, ' ');
    const words = (s: string) => s.replace(/\s+/g, ' ').split(' ').length;
    expect(general.reduce((n, c) => n + words(c.text), 0)).toBe(words(text.trim()));
  });

  it('joins sentences broken across lines and assigns body paragraphs to their heading', () => {
    expect(byId.get('2.4.2(4)iii')!.text).toBe('And iii is directly related to public safety, public health and major public interests;');
    expect(byId.get('2.4.1')!.text).toMatch(/collect and use personal information scenarios$/);
    expect(byId.get('2.4.1(1)i')!.text).toMatch(/^Basic service i\. e\n\nTo comply with the requirements of laws/);
    expect(byId.get('5.1')!.text).toMatch(/objectives, unless it is required by law\.$/);
  });

  it('numbers the unmarked item of a ;-separated list (2.4.2(4)ix) and names the paragraphs after lists', () => {
    expect(byId.get('2.4.2(4)ix')!.text).toMatch(/^It is necessary to maintain the safe and stable operation/);
    expect(byId.get('2.4.2(4)-anonymized')!.text).toMatch(/cannot re-identify specific individuals/);
    expect(byId.get('3.4-anonymized')!.parent).toBe('3.4');
    expect(byId.get('4.2-recipients')!.text).toMatch(/^If we decide to respond to your deletion request/);
    expect(byId.get('4.2-backups')!.text).toMatch(/backup system/);
    // A closing paragraph with no subject of its own stays with the list's parent.
    expect(byId.get('5.3')!.text).toMatch(/In the above cases, we will ensure/);
  });

  it('builds the hierarchy: roman items under their parenthesised item, under their section', () => {
    expect(byId.get('2.4.2(4)viii')!.parent).toBe('2.4.2(4)');
    expect(byId.get('2.4.2(4)')!.parent).toBe('2.4.2');
    expect(byId.get('2.4.1')!.parent).toBe('2');
    expect(byId.get('VI')!.parent).toBeNull();
    expect(clauseWithChildren(general, '2.4.2(4)').map((c) => c.id)).toEqual([
      '2.4.2(4)', ...['i', 'ii', 'iii', 'iv', 'v', 'vi', 'vii', 'viii', 'ix', 'x'].map((r) => `2.4.2(4)${r}`), '2.4.2(4)-anonymized',
    ]);
  });
});

describe('other policy texts', () => {
  it('parses a short service-specific policy', () => {
    const clauses = parsePolicy('Sharing policy\n\n1. Scope\n\n1.1 This policy covers sharing.\n\n1.2 Recipients are listed.\n\n2. Limits\n\n2.1 We share transaction records only;');
    expect(clauses.map((c) => c.id)).toEqual(['preamble', '1', '1.1', '1.2', '2', '2.1']);
  });

  it('refuses a text that numbers a clause twice', () => {
    expect(() => parsePolicy('1. A\n\n1.1 x.\n\n1.1 y.')).toThrow(PolicyParseError);
  });
});
