import { isIP } from 'node:net';

/**
 * The anonymization check of a dataset released to a recipient without consent (policy 3.4 last
 * paragraph, 2.4.2(4) last paragraph; PIPL art. 4, 73(4)): data that "cannot re-identify specific
 * individuals and cannot be recovered". Operationally:
 * 1. every column is classified by the caller as a quasi-identifier, a sensitive attribute or an
 *    insensitive attribute; an unclassified column fails the check (nothing slips through unnamed);
 * 2. no direct identifier: no column the caller calls identifying, no column whose name denotes one
 *    (phone, e-mail, name, ID number, address, IP, device id, account ids …), and no value anywhere that
 *    looks like one (mobile or E.164 numbers, e-mail addresses, PRC resident ID numbers with a valid
 *    check digit, bank card numbers passing Luhn, IP addresses);
 * 3. k-anonymity over the quasi-identifiers: every combination of their values is shared by at least
 *    k rows (config `ANONYMIZATION_K`).
 * The report names the smallest equivalence class and how many rows sit in classes below k (what to
 * generalize or suppress), and, for information, the l-diversity of each sensitive attribute.
 */

export type Cell = string | number | boolean | null;
export type Row = Record<string, Cell>;

export interface AttributeClasses {
  /** Columns that could single someone out in combination (age band, region, gender …). */
  quasiIdentifiers: string[];
  /** Sensitive values the release is about (diagnosis, amount …); reported for l-diversity. */
  sensitive?: string[];
  /** Columns that identify nobody, even combined (aggregates, constants). */
  insensitive?: string[];
  /** Columns the caller knows to be direct identifiers: their presence fails the check. */
  identifying?: string[];
}

export interface DirectIdentifierFinding {
  column: string;
  reason: 'declared' | 'column-name' | 'values';
  /** For `values`: what was detected, and in how many rows. */
  detector?: 'phone' | 'email' | 'id-number' | 'bank-card' | 'ip-address';
  rows?: number;
}

export interface AnonymizationReport {
  passed: boolean;
  /** The threshold applied. */
  k: number;
  rows: number;
  columns: string[];
  unclassifiedColumns: string[];
  directIdentifiers: DirectIdentifierFinding[];
  equivalenceClasses: number;
  /** The k the dataset achieves: the size of its smallest equivalence class (0 for no rows). */
  achievedK: number;
  /** The smallest equivalence class: its size, and how many classes are that small. */
  smallestClass: { size: number; classes: number } | null;
  classesBelowK: number;
  rowsInClassesBelowK: number;
  /** Per sensitive attribute: the fewest distinct values found in one equivalence class. */
  lDiversity: { attribute: string; l: number }[];
  /** Why the check failed, one line per reason; empty when passed. */
  reasons: string[];
}

/** Normalized column names that denote a direct identifier. */
const IDENTIFYING_NAMES = new Set([
  'name', 'fullname', 'firstname', 'lastname', 'surname', 'givenname', 'familyname', 'realname', 'nickname', 'username', 'accountname',
  'phone', 'phonenumber', 'mobile', 'mobilephone', 'mobilenumber', 'tel', 'telephone', 'msisdn', 'cellphone',
  'email', 'emailaddress', 'mail', 'idnumber', 'idcard', 'idno', 'identitycard', 'identitynumber', 'nationalid', 'residentid', 'passport', 'passportnumber', 'ssn',
  'address', 'streetaddress', 'postaladdress', 'homeaddress', 'street',
  'ip', 'ipaddress', 'ipaddr', 'deviceid', 'imei', 'imsi', 'idfa', 'oaid', 'androidid', 'macaddress', 'mac',
  'subjectid', 'userid', 'accountid', 'customerid', 'memberid', 'openid', 'unionid', 'uid',
  'bankcard', 'bankcardnumber', 'cardnumber', 'accountnumber', 'iban', 'licenseplate', 'plate', 'platenumber',
  'avatar', 'photo', 'face', 'faceimage', 'fingerprint', 'voiceprint', 'latlng', 'gps', 'coordinates',
]);
/** Substrings of a normalized column name that denote a direct identifier wherever they occur. */
const IDENTIFYING_PARTS = ['phone', 'email', 'mobile', 'passport', 'idcard', 'idnumber', 'ipaddress', 'deviceid', 'bankcard', 'cardnumber'];

/** Chinese words in a column name that denote a direct identifier (phone, name, ID, e-mail, address …). */
const IDENTIFYING_PARTS_ZH = ['手机', '电话', '号码', '姓名', '名字', '真实名', '昵称', '身份证', '证件', '护照', '邮箱', '电子邮件', '地址', '住址', '银行卡', '卡号', '账号', '帐号', '设备号', '车牌'];
const MORE_NAMES = new Set(['cell', 'cellno', 'cellnumber', 'telno', 'telnumber', 'phoneno', 'mobileno', 'contact', 'contactno']);

// Full-width letters and digits (ｐｈｏｎｅ, １３９…) are folded to ASCII first (NFKC).
const normalizeName = (c: string) => c.normalize('NFKC').toLowerCase().replace(/[^a-z0-9]/g, '');

/** True when a column name denotes a direct identifier (English or Chinese, any width). */
export function isIdentifyingColumnName(column: string): boolean {
  const n = normalizeName(column);
  const folded = column.normalize('NFKC');
  return IDENTIFYING_NAMES.has(n) || MORE_NAMES.has(n) || IDENTIFYING_PARTS.some((p) => n.includes(p)) || IDENTIFYING_PARTS_ZH.some((p) => folded.includes(p));
}

const PHONE = /(?<![\d])(?:(?:\+|00)?86[\s-]?)?1[3-9]\d(?:[\s-]?\d){8}(?!\d)|\+[1-9](?:[\s-]?\d){6,14}(?!\d)/;
// Any script on either side of the @ (zhangsan@例子.中国 is an address too).
const EMAIL = /[^\s@"'<>()[\],;:]+@[^\s@"'<>()[\],;:]+\.[^\s@"'<>()[\],;:.]{2,}/u;
const ID18 = /(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])/g;
const DIGIT_RUN = /(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)/g;
const IPV4 = /(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])/g;

/** Check digit of a PRC resident identity number (GB 11643-1999). */
export function isValidResidentId(id: string): boolean {
  if (!/^\d{17}[\dXx]$/.test(id)) return false;
  const weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const sum = weights.reduce((s, w, i) => s + w * Number(id[i]), 0);
  return '10X98765432'[sum % 11] === id[17]!.toUpperCase();
}

/** Luhn check (bank card numbers). */
export function passesLuhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i += 1) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) { d *= 2; if (d > 9) d -= 9; }
    sum += d;
  }
  return digits.length >= 13 && sum % 10 === 0;
}

/** What direct identifier a single value looks like, if any. */
export function detectIdentifier(value: Cell): DirectIdentifierFinding['detector'] | undefined {
  if (value === null || typeof value === 'boolean') return undefined;
  // Folded first: full-width digits and signs (１３９…, ＠) are the same identifiers.
  const text = String(value).normalize('NFKC');
  if (text.length < 7) return undefined;
  if (EMAIL.test(text)) return 'email';
  // Phone numbers written with dots, slashes or brackets (139.1234.5678, +86 (139) 1234-5678).
  if (PHONE.test(text.replace(/[\s()./-]/g, ''))) return 'phone';
  for (const m of text.matchAll(ID18)) if (isValidResidentId(m[0])) return 'id-number';
  for (const m of text.matchAll(DIGIT_RUN)) if (passesLuhn(m[0].replace(/[ -]/g, ''))) return 'bank-card';
  if (PHONE.test(text)) return 'phone';
  if (isIP(text.trim())) return 'ip-address';
  for (const m of text.matchAll(IPV4)) if (m[0].split('.').every((o) => Number(o) <= 255)) return 'ip-address';
  return undefined;
}

/**
 * Runs the check. Pure and linear in the number of cells; `k` is the threshold (config
 * `ANONYMIZATION_K`). Missing cells count as null.
 */
export function checkAnonymization(rows: Row[], classes: AttributeClasses, k: number): AnonymizationReport {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))].sort();
  const qi = [...new Set(classes.quasiIdentifiers)];
  const sensitive = [...new Set(classes.sensitive ?? [])];
  const declared = new Set([...qi, ...sensitive, ...(classes.insensitive ?? []), ...(classes.identifying ?? [])]);
  const unclassifiedColumns = columns.filter((c) => !declared.has(c));
  const reasons: string[] = [];

  const directIdentifiers: DirectIdentifierFinding[] = [];
  for (const c of classes.identifying ?? []) if (columns.includes(c)) directIdentifiers.push({ column: c, reason: 'declared' });
  for (const c of columns) {
    if (directIdentifiers.some((d) => d.column === c)) continue;
    if (isIdentifyingColumnName(c)) { directIdentifiers.push({ column: c, reason: 'column-name' }); continue; }
    const hits = new Map<NonNullable<DirectIdentifierFinding['detector']>, number>();
    for (const r of rows) {
      const d = detectIdentifier(r[c] ?? null);
      if (d) hits.set(d, (hits.get(d) ?? 0) + 1);
    }
    const top = [...hits].sort((a, b) => b[1] - a[1])[0];
    if (top) directIdentifiers.push({ column: c, reason: 'values', detector: top[0], rows: top[1] });
  }

  // Equivalence classes over the quasi-identifiers.
  const groups = new Map<string, { size: number; sensitive: Map<string, Set<string>> }>();
  for (const r of rows) {
    const key = JSON.stringify(qi.map((c) => r[c] ?? null));
    let g = groups.get(key);
    if (!g) { g = { size: 0, sensitive: new Map(sensitive.map((s) => [s, new Set<string>()])) }; groups.set(key, g); }
    g.size += 1;
    for (const s of sensitive) g.sensitive.get(s)!.add(JSON.stringify(r[s] ?? null));
  }
  let achievedK = 0;
  let smallestCount = 0;
  let classesBelowK = 0;
  let rowsInClassesBelowK = 0;
  for (const g of groups.values()) {
    if (achievedK === 0 || g.size < achievedK) { achievedK = g.size; smallestCount = 1; } else if (g.size === achievedK) smallestCount += 1;
    if (g.size < k) { classesBelowK += 1; rowsInClassesBelowK += g.size; }
  }
  const lDiversity = sensitive.map((attribute) => ({
    attribute,
    l: groups.size ? Math.min(...[...groups.values()].map((g) => g.sensitive.get(attribute)!.size)) : 0,
  }));

  if (unclassifiedColumns.length) reasons.push(`columns not classified as quasi-identifier, sensitive or insensitive: ${unclassifiedColumns.join(', ')}`);
  for (const d of directIdentifiers) {
    reasons.push(d.reason === 'values'
      ? `column ${d.column} holds direct identifiers (${d.detector} in ${d.rows} row(s))`
      : d.reason === 'declared' ? `column ${d.column} is a direct identifier` : `column ${d.column} names a direct identifier`);
  }
  if (rows.length && achievedK < k) {
    reasons.push(`k-anonymity ${achievedK} is below ${k}: ${classesBelowK} equivalence class(es) with ${rowsInClassesBelowK} row(s) are smaller than ${k}; generalize or suppress them`);
  }
  return {
    passed: reasons.length === 0,
    k,
    rows: rows.length,
    columns,
    unclassifiedColumns,
    directIdentifiers,
    equivalenceClasses: groups.size,
    achievedK,
    smallestClass: groups.size ? { size: achievedK, classes: smallestCount } : null,
    classesBelowK,
    rowsInClassesBelowK,
    lDiversity,
    reasons,
  };
}
