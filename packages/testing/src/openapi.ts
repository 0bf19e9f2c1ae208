/**
 * True when a regular expression only matches strings of bounded length: anchored at both ends, with
 * no `*`, `+` or open `{n,}` repetition outside character classes (e.g. `^chl_[0-9a-f]{32}$`).
 */
function boundedPattern(pattern: string): boolean {
  const bare = pattern.replace(/\\./g, 'x').replace(/\[[^\]]*\]/g, 'x');
  return bare.startsWith('^') && bare.endsWith('$') && !/[*+]|\{\d+,\}/.test(bare);
}

/** Formats whose values have a bounded length. */
const BOUNDED_FORMATS = new Set(['date-time', 'date', 'country-code']);

/**
 * Inputs an OpenAPI document accepts without a bound (for the services' health tests): every string in
 * a request body, path, query or header parameter needs `maxLength` (or is an enum, a constant, of a
 * fixed-size format, or matches a bounded pattern), every integer `maximum`, every array `maxItems`, every object with
 * open-ended keys `maxProperties`. An unbounded
 * field lets one request store megabytes where a few bytes belong (a breaker helper sent a 180 KB
 * language tag). Returns `METHOD path where` for each, e.g. `POST /v1/x/things body/language`.
 */
export function unboundedInputs(doc: { paths: Record<string, Record<string, unknown>>; components?: { schemas?: Record<string, unknown> } }): string[] {
  const found: string[] = [];
  const resolve = (s: Record<string, unknown>): Record<string, unknown> => {
    const ref = s.$ref;
    if (typeof ref !== 'string') return s;
    const name = ref.split('/').pop()!;
    return (doc.components?.schemas?.[name] as Record<string, unknown> | undefined) ?? s;
  };
  const walk = (raw: unknown, where: string, seen: Set<unknown>) => {
    if (!raw || typeof raw !== 'object') return;
    const s = resolve(raw as Record<string, unknown>);
    if (seen.has(s)) return;
    seen.add(s);
    for (const key of ['anyOf', 'oneOf', 'allOf'] as const) for (const sub of (s[key] as unknown[] | undefined) ?? []) walk(sub, where, seen);
    const type = s.type;
    const bounded = s.maxLength !== undefined || s.enum !== undefined || s.const !== undefined
      || BOUNDED_FORMATS.has(s.format as string) || (typeof s.pattern === 'string' && boundedPattern(s.pattern));
    if (type === 'string' && !bounded) found.push(where);
    // An integer without a maximum: 99999999999999999999999 parses to 1e23, an "integer" (an answer
    // said "no version 1e+23"). Non-integral numbers need none: any finite one is a value (the kit
    // refuses the rest).
    if (type === 'integer' && s.maximum === undefined && s.exclusiveMaximum === undefined && s.enum === undefined && s.const === undefined) found.push(where);
    if (type === 'array') {
      if (s.maxItems === undefined) found.push(`${where}[]`);
      walk(s.items, `${where}[]`, seen);
    }
    if (type === 'object' || s.properties) {
      for (const [k, v] of Object.entries((s.properties as Record<string, unknown> | undefined) ?? {})) walk(v, `${where}/${k}`, seen);
      const extra = s.additionalProperties;
      if (extra && typeof extra === 'object') {
        if (s.maxProperties === undefined) found.push(`${where}/*`);
        walk(extra, `${where}/*`, seen);
      }
    }
  };
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item as Record<string, { requestBody?: { content?: Record<string, { schema?: unknown }> }; parameters?: { in: string; name: string; schema?: unknown }[] }>)) {
      const at = `${method.toUpperCase()} ${path}`;
      for (const media of Object.values(op.requestBody?.content ?? {})) walk(media.schema, `${at} body`, new Set());
      for (const p of op.parameters ?? []) walk(p.schema, `${at} ${p.in}/${p.name}`, new Set());
    }
  }
  return found;
}
