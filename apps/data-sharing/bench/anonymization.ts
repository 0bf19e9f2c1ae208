// Benchmark of the anonymization check (policy 3.4): rows per second over a synthetic dataset, next to
// a baseline measured in the same run on the same rows (one JSON.stringify per row, the cost of merely
// looking at every cell once). Prints figures; no target is asserted. Run: npx tsx apps/data-sharing/bench/anonymization.ts [rows]
import { median } from '@pipp/testing';
import { checkAnonymization, type Row } from '../src/domain/anonymization.js';

const n = Number(process.argv[2] ?? 50_000);
const cities = ['Beijing', 'Shanghai', 'Guangzhou', 'Shenzhen', 'Chengdu', 'Hangzhou'];
const rows: Row[] = Array.from({ length: n }, (_, i) => ({
  ageBand: `${20 + (i % 5) * 10}-${29 + (i % 5) * 10}`,
  city: cities[i % cities.length]!,
  gender: i % 2 ? 'F' : 'M',
  diagnosis: ['flu', 'cold', 'asthma', 'diabetes'][i % 4]!,
  visits: i % 13,
  note: i % 97 === 0 ? 'follow-up in spring' : '',
}));
const classes = { quasiIdentifiers: ['ageBand', 'city', 'gender'], sensitive: ['diagnosis'], insensitive: ['visits', 'note'] };

function time(fn: () => unknown, runs = 5): number {
  fn();
  const samples: number[] = [];
  for (let i = 0; i < runs; i += 1) {
    const t = performance.now();
    fn();
    samples.push(performance.now() - t);
  }
  return median(samples);
}

const baseline = time(() => { let len = 0; for (const r of rows) len += JSON.stringify(r).length; return len; });
const check = time(() => checkAnonymization(rows, classes, 5));
const report = checkAnonymization(rows, classes, 5);
const fmt = (ms: number) => `${ms.toFixed(1)} ms (${Math.round(n / (ms / 1000)).toLocaleString('en')} rows/s)`;
process.stdout.write([
  `rows: ${n}, columns: 6, equivalence classes: ${report.equivalenceClasses}, achieved k: ${report.achievedK}, passed: ${report.passed}`,
  `baseline (JSON.stringify each row): ${fmt(baseline)}`,
  `anonymization check:                ${fmt(check)}`,
  `ratio check / baseline: ${(check / baseline).toFixed(2)}×`,
  '',
].join('\n'));
