// unicode-confusables ships its declarations under a name TypeScript does not find (index.ts.d).
declare module 'unicode-confusables' {
  /** The string with each character replaced by its confusables.txt prototype (zero-width characters dropped). */
  export function rectifyConfusion(value: string): string;
}
