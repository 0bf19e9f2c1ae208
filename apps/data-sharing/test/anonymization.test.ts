// The anonymization check of policy 3.4 (last paragraph): direct identifiers and k-anonymity.
import { describe, expect, it } from 'vitest';
import { checkAnonymization, detectIdentifier, isIdentifyingColumnName, isValidResidentId, passesLuhn, type Row } from '../src/domain/anonymization.js';

const rows = (spec: [string, string, string][]): Row[] => spec.map(([age, region, diagnosis]) => ({ age, region, diagnosis }));
const classes = { quasiIdentifiers: ['age', 'region'], sensitive: ['diagnosis'] };

describe('k-anonymity over the declared quasi-identifiers', () => {
  it('passes when every equivalence class has at least k rows and reports the smallest class', () => {
    const data = rows([
      ['30-39', 'BJ', 'flu'], ['30-39', 'BJ', 'cold'], ['30-39', 'BJ', 'flu'],
      ['40-49', 'SH', 'flu'], ['40-49', 'SH', 'asthma'], ['40-49', 'SH', 'flu'], ['40-49', 'SH', 'cold'],
    ]);
    const r = checkAnonymization(data, classes, 3);
    expect(r.passed).toBe(true);
    expect(r.equivalenceClasses).toBe(2);
    expect(r.achievedK).toBe(3);
    expect(r.smallestClass).toEqual({ size: 3, classes: 1 });
    expect(r.lDiversity).toEqual([{ attribute: 'diagnosis', l: 2 }]);
    expect(r.reasons).toEqual([]);
  });

  it('fails when one class is smaller than k, naming the class size and the rows to generalize', () => {
    const data = rows([
      ['30-39', 'BJ', 'flu'], ['30-39', 'BJ', 'cold'], ['30-39', 'BJ', 'flu'],
      ['80-89', 'XZ', 'cancer'],
    ]);
    const r = checkAnonymization(data, classes, 3);
    expect(r.passed).toBe(false);
    expect(r.achievedK).toBe(1);
    expect(r.smallestClass).toEqual({ size: 1, classes: 1 });
    expect(r.classesBelowK).toBe(1);
    expect(r.rowsInClassesBelowK).toBe(1);
    expect(r.reasons.join()).toMatch(/k-anonymity 1 is below 3/);
  });

  it('treats the threshold as inclusive (k rows is enough, k-1 is not)', () => {
    const five = Array.from({ length: 5 }, () => ({ age: '20-29', region: 'GD', diagnosis: 'x' }));
    expect(checkAnonymization(five, classes, 5).passed).toBe(true);
    expect(checkAnonymization(five.slice(1), classes, 5).passed).toBe(false);
  });

  it('distinguishes a missing cell from the string "null" and from other values', () => {
    const data: Row[] = [
      { age: null, region: 'BJ', diagnosis: 'a' }, { region: 'BJ', diagnosis: 'a' },
      { age: 'null', region: 'BJ', diagnosis: 'a' },
    ];
    const r = checkAnonymization(data, classes, 2);
    expect(r.equivalenceClasses).toBe(2);
    expect(r.achievedK).toBe(1);
  });
});

describe('direct identifiers', () => {
  it('fails on a column whose name denotes an identifier, even with harmless-looking values', () => {
    const data = Array.from({ length: 5 }, (_, i) => ({ age: '30-39', region: 'BJ', diagnosis: 'flu', user_id: `u${i}` }));
    const r = checkAnonymization(data, { ...classes, insensitive: ['user_id'] }, 2);
    expect(r.passed).toBe(false);
    expect(r.directIdentifiers).toEqual([{ column: 'user_id', reason: 'column-name' }]);
  });

  it('fails on identifier values hidden in innocently named columns', () => {
    const cases: [string, string][] = [
      ['call me on 13812345678 please', 'phone'],
      ['+44 20 7946 0958', 'phone'],
      ['x@example.com', 'email'],
      ['11010519491231002X', 'id-number'],
      ['4111 1111 1111 1111', 'bank-card'],
      ['10.1.2.3', 'ip-address'],
      ['2001:db8::1', 'ip-address'],
      // Forms that passed as anonymous before (found by fuzzing).
      ['１３９１２３４５６７８', 'phone'],
      ['139.1234.5678', 'phone'],
      ['+86 (139) 1234-5678', 'phone'],
      ['139/1234/5678', 'phone'],
      ['zhang.san＠example.com', 'email'],
      ['zhangsan@例子.中国', 'email'],
      ['１１０１０５１９４９１２３１００２Ｘ', 'id-number'],
    ];
    for (const [value, detector] of cases) {
      const data = Array.from({ length: 3 }, (_, i) => ({ age: '30-39', region: 'BJ', diagnosis: 'flu', note: i === 1 ? value : 'none' }));
      const r = checkAnonymization(data, { ...classes, insensitive: ['note'] }, 2);
      expect(r.passed, value).toBe(false);
      expect(r.directIdentifiers, value).toEqual([{ column: 'note', reason: 'values', detector, rows: 1 }]);
    }
  });

  it('recognizes identifying column names in Chinese and in full-width letters', () => {
    for (const c of ['手机号', '姓名', '身份证号', 'ｐｈｏｎｅ', 'tel_no', 'cell', '联系电话', '电子邮件']) expect(isIdentifyingColumnName(c), c).toBe(true);
    for (const c of ['age', 'region', '年龄', '城市', 'hotel', 'diagnosis']) expect(isIdentifyingColumnName(c), c).toBe(false);
  });

  it('does not flag ordinary codes and numbers', () => {
    for (const v of ['100080', '30-39', 2026, 'A+', '12345678901234', '3.14159', 'BJ-Haidian']) expect(detectIdentifier(v), String(v)).toBeUndefined();
  });

  it('fails on a column the caller declares identifying, and on unclassified columns', () => {
    const data = Array.from({ length: 3 }, () => ({ age: '30-39', region: 'BJ', diagnosis: 'flu', token: 'abc', extra: 1 }));
    const r = checkAnonymization(data, { ...classes, identifying: ['token'] }, 2);
    expect(r.passed).toBe(false);
    expect(r.directIdentifiers).toContainEqual({ column: 'token', reason: 'declared' });
    expect(r.unclassifiedColumns).toEqual(['extra']);
  });

  it('validates PRC resident id check digits and Luhn', () => {
    expect(isValidResidentId('11010519491231002X')).toBe(true);
    expect(isValidResidentId('110105194912310021')).toBe(false);
    expect(passesLuhn('4111111111111111')).toBe(true);
    expect(passesLuhn('4111111111111112')).toBe(false);
  });
});
