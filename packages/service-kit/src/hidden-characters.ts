/**
 * Characters no request value may carry, in any field of any service: C0 and C1 controls other than tab
 * and line breaks, DEL, the bidirectional embeddings, overrides and isolates that let text disguise
 * itself (U+202A–U+202E, U+2066–U+2069, "Trojan Source"), and unpaired surrogates (UTF-16 halves that
 * MongoDB stores as U+FFFD, silently changing the value). A breaker helper stored NUL, a right-to-left
 * override and a lone surrogate in recipients' legal names, incident texts and disclosure channels,
 * shown on public lists; identity alone refused them.
 */
const HIDDEN = /(?![\t\n\r])[\p{Cc}\p{Cs}\u202a-\u202e\u2066-\u2069]/u;

/**
 * The JSON Pointer of the first string in `value` (object keys included) that carries a hidden
 * character, under `root` (e.g. `/body`), or null. Walks at most `maxDepth` levels (bodies are bounded
 * in size and nesting before this runs).
 */
export function hiddenCharacterPath(value: unknown, root: string, maxDepth = 64): string | null {
  if (typeof value === 'string') return HIDDEN.test(value) ? root : null;
  if (value === null || typeof value !== 'object' || maxDepth <= 0) return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = hiddenCharacterPath(value[i], `${root}/${i}`, maxDepth - 1);
      if (found) return found;
    }
    return null;
  }
  for (const key of Object.keys(value)) {
    const path = `${root}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    if (HIDDEN.test(key)) return path;
    const found = hiddenCharacterPath((value as Record<string, unknown>)[key], path, maxDepth - 1);
    if (found) return found;
  }
  return null;
}
