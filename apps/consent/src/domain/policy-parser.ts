/**
 * Parses a privacy-policy text into addressable clauses, in the id syntax of
 * `packages/contracts/src/clauses.ts` (policy preamble, 1.1, VI):
 * - numbered sections as written: `1`, `1.1`, `4.2.3`;
 * - parenthesised items under the last numbered section: `2.4.1(1)`, `2.4.2(4)`;
 * - roman sub-items of a parenthesised item: `2.4.1(1)i`, `2.4.2(4)viii` (the numeral may sit among
 *   the first words — "And ii is …", "Where vii …" — and an unmarked item of a `;`-separated list
 *   takes the next numeral, as `2.4.2(4)ix` does in the sample policy);
 * - unnumbered paragraphs after a list belong to the list's parent, named by their subject where one
 *   is recognised (`4.2-recipients`, `4.2-backups`, `3.4-anonymized`), else merged into the parent;
 * - the text before section 1: `preamble`; a roman top-level section (`Vi. Policy …`): `VI`.
 * A line broken in the middle of a sentence (the next paragraph starts in lower case after one that
 * has no closing punctuation) is joined back. Pure; no I/O.
 */

/** One addressable clause: its id, the id of its parent clause (null at top level) and its text. */
export interface PolicyClause {
  id: string;
  parent: string | null;
  /** The clause's paragraphs, as written (numbering included), separated by blank lines. */
  text: string;
}

/** Raised when a text cannot be parsed into unique clauses (e.g. the same number twice). */
export class PolicyParseError extends Error {
  override readonly name = 'PolicyParseError';
}

const ROMANS = ['i', 'ii', 'iii', 'iv', 'v', 'vi', 'vii', 'viii', 'ix', 'x', 'xi', 'xii', 'xiii', 'xiv', 'xv'];
const NUMBERED = /^(\d+(?:\.\d+)*)\.?\s+\S/;
const ROMAN_SECTION = /^([ivxIVX]+)\.\s+\S/;
const PARENTHESISED = /^\((\d+)\)\s*/;
const TERMINATED = /[.;:!?。；：！？)"”]$/;

/** Names of unnumbered paragraphs after a list, recognised by what they are about (first match wins). */
const NAMED_PARAGRAPHS: [RegExp, string][] = [
  [/\bbackup/i, 'backups'],
  [/re-identify|anonymi[sz]/i, 'anonymized'],
  [/\bsubjects who receive\b|\brecipients?\b/i, 'recipients'],
];

interface Working {
  id: string;
  parent: string | null;
  paragraphs: string[];
  /** The first paragraph has no closing punctuation: a heading, so unmarked paragraphs are its body. */
  heading: boolean;
  kind: 'preamble' | 'section' | 'item' | 'roman' | 'named';
}

const terminated = (s: string) => TERMINATED.test(s.trimEnd());
const startsLower = (s: string) => /^[a-z]/.test(s);

/** Splits a text into paragraphs (blank-line separated), whitespace-normalised within each. */
function paragraphsOf(text: string): string[] {
  return text.replace(/\r\n?/g, '\n').split(/\n\s*\n/).map((p) => p.replace(/\s+/g, ' ').trim()).filter(Boolean);
}

/**
 * Parses a policy text into its clauses, in document order.
 * @throws PolicyParseError when a clause id would occur twice.
 */
export function parsePolicy(text: string): PolicyClause[] {
  const clauses: Working[] = [];
  const byId = new Map<string, Working>();
  let current: Working | undefined;
  let section: string | undefined; // last numbered section, parent of parenthesised items
  let item: Working | undefined; // current parenthesised item, parent of roman sub-items
  let nextRoman = 0;

  const open = (id: string, parent: string | null, paragraph: string, kind: Working['kind']) => {
    if (byId.has(id)) throw new PolicyParseError(`clause ${id} occurs twice`);
    const c: Working = { id, parent, paragraphs: [paragraph], heading: !terminated(paragraph), kind };
    clauses.push(c);
    byId.set(id, c);
    current = c;
    return c;
  };
  const nearestAncestor = (id: string): string | null => {
    const parts = id.split('.');
    for (let n = parts.length - 1; n > 0; n -= 1) {
      const candidate = parts.slice(0, n).join('.');
      if (byId.has(candidate)) return candidate;
    }
    return null;
  };

  for (const p of paragraphsOf(text)) {
    const last = current?.paragraphs[current.paragraphs.length - 1];
    // A sentence broken across paragraphs: join it back.
    if (current && last !== undefined && !terminated(last) && startsLower(p) && !isRomanItem(p)) {
      current.paragraphs[current.paragraphs.length - 1] = `${last} ${p}`;
      if (current.paragraphs.length === 1) current.heading = !terminated(current.paragraphs[0]!);
      continue;
    }
    const numbered = NUMBERED.exec(p);
    if (numbered) {
      const id = numbered[1]!;
      open(id, nearestAncestor(id), p, 'section');
      section = id;
      item = undefined;
      continue;
    }
    const romanSection = ROMAN_SECTION.exec(p);
    if (romanSection && !item) {
      open(romanSection[1]!.toUpperCase(), null, p, 'section');
      section = undefined;
      continue;
    }
    const paren = PARENTHESISED.exec(p);
    if (paren && section) {
      item = open(`${section}(${paren[1]})`, section, p, 'item');
      nextRoman = 0;
      continue;
    }
    if (item && current) {
      const expected = ROMANS[nextRoman];
      const marked = expected !== undefined && firstWords(p).includes(expected);
      // An unmarked paragraph right after a `;`-terminated sub-item continues the list.
      const listGoesOn = current.kind === 'roman' && last !== undefined && last.trimEnd().endsWith(';');
      if (expected !== undefined && (marked || listGoesOn)) {
        open(`${item.id}${expected}`, item.id, p, 'roman');
        nextRoman += 1;
        continue;
      }
    }
    if (!current) {
      open('preamble', null, p, 'preamble');
      continue;
    }
    // An unmarked paragraph: the body of a heading, or a paragraph after a list.
    if (current.heading || current.kind === 'preamble' || current.parent === null) {
      current.paragraphs.push(p);
      continue;
    }
    const parentId = current.parent;
    const name = NAMED_PARAGRAPHS.find(([re]) => re.test(p))?.[1];
    if (current.kind === 'named' && (!name || current.id === `${parentId}-${name}`)) {
      current.paragraphs.push(p);
      continue;
    }
    if (name) {
      const named = open(`${parentId}-${name}`, parentId, p, 'named');
      named.heading = false;
    } else {
      const parent = byId.get(parentId)!;
      parent.paragraphs.push(p);
      current = parent;
      current.heading = true; // further unmarked paragraphs stay with the parent
    }
  }
  return clauses.map((c) => ({ id: c.id, parent: c.parent, text: c.paragraphs.join('\n\n') }));

  function isRomanItem(p: string): boolean {
    const expected = ROMANS[nextRoman];
    return Boolean(item && expected && firstWords(p).includes(expected));
  }
}

/** The first three words of a paragraph, lower-cased, without trailing punctuation. */
function firstWords(p: string): string[] {
  return p.split(' ', 3).map((w) => w.toLowerCase().replace(/[.,;:]+$/, ''));
}

/** The text of one clause with the text of every clause under it, in document order. */
export function clauseWithChildren(clauses: PolicyClause[], id: string): PolicyClause[] {
  const ids = new Set([id]);
  const out: PolicyClause[] = [];
  for (const c of clauses) {
    if (c.id === id || (c.parent !== null && ids.has(c.parent))) {
      ids.add(c.id);
      out.push(c);
    }
  }
  return out;
}
