/**
 * MongoDB features the code must not use, because FerretDB 1.24 (the local stand-in) rejects them or,
 * worse, silently ignores them (measured: docs/infrastructure.md). A test scans every source file of
 * the repository with these; code needing more than a standalone MongoDB and FerretDB both support
 * fails the build.
 */
export const NON_PORTABLE_MONGO: { pattern: RegExp; why: string }[] = [
  { pattern: /\$(lookup|graphLookup|facet|replaceRoot|replaceWith|sample|sortByCount|merge|out|unionWith|bucket|bucketAuto|setWindowFields|densify|fill)\b/, why: 'aggregation stage FerretDB 1.24 does not implement' },
  { pattern: /\$(avg|stdDevPop|stdDevSamp|first|last|mergeObjects)\b/, why: '$group accumulator other than $sum/$count' },
  { pattern: /\.watch\(/, why: 'change streams are not supported' },
  { pattern: /\b(startSession|withTransaction|startTransaction|commitTransaction|abortTransaction)\b/, why: 'multi-document transactions are not supported (writes are not rolled back)' },
  { pattern: /\b(expireAfterSeconds|partialFilterExpression)\b|\bexpires\s*:/, why: 'TTL and partial indexes are rejected; purge by an expiry field instead' },
  { pattern: /\bcollation\b/, why: 'collations are not supported' },
  { pattern: /\bsparse\s*:\s*true\b/, why: 'sparse indexes are silently built as plain ones' },
  { pattern: /\$text\b|\$search\b|:\s*['"](text|2dsphere|hashed)['"]/, why: 'text, geo and hashed indexes are not supported' },
  { pattern: /\barrayFilters\b|\.\$\[|\.\$(\.|['"`])/, why: 'positional updates and arrayFilters are not supported' },
  { pattern: /\$elemMatch\b/, why: '$elemMatch silently matches nothing on FerretDB 1.24' },
  { pattern: /\$pull\s*:/, why: '$pull with a condition is silently ignored on FerretDB 1.24; use $pullAll with exact elements' },
  { pattern: /\$(where|function|accumulator)\b/, why: 'server-side JavaScript is not supported' },
  { pattern: /\bDecimal128\b/, why: 'Decimal128 is not supported' },
  { pattern: /\.bulkWrite\((?!chunk\b)/, why: 'one command of ~100 updates never returns on FerretDB 1.24; send bulk writes through bulkWriteChunked (its `chunk`)' },
];

/** Removes // and /* *\/ comments so that prose about these features is not flagged. */
function stripComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, ' ')).replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

/** Lists the non-portable MongoDB usages in a source text, with 1-based line numbers. */
export function findNonPortableMongo(source: string): { line: number; text: string; why: string }[] {
  const found: { line: number; text: string; why: string }[] = [];
  stripComments(source).split('\n').forEach((text, i) => {
    for (const { pattern, why } of NON_PORTABLE_MONGO) {
      if (pattern.test(text)) found.push({ line: i + 1, text: text.trim(), why });
    }
  });
  return found;
}
