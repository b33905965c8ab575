/**
 * Statement normalization, for grouping "the same statement running in many sessions": string,
 * numeric and boolean literals and $n parameters become `?`, IN lists collapse, comments go, and
 * whitespace is collapsed. Pure and total: any input string gives a string.
 */
export function normalizeStatement(sql: string): string {
  return (
    sql
      // comments
      .replace(/--[^\n]*/g, ' ')
      .replace(/\/\*[\s\S]*?\*\//g, ' ')
      // dollar-quoted strings, then quoted strings (with doubled quotes and E'' escapes)
      .replace(/\$([A-Za-z_][A-Za-z0-9_]*)?\$[\s\S]*?\$\1\$/g, '?')
      .replace(/\b[eE]'(?:[^'\\]|\\.|'')*'/g, '?')
      .replace(/'(?:[^']|'')*'/g, '?')
      // parameters and numbers (not parts of identifiers)
      .replace(/\$\d+/g, '?')
      .replace(/(?<![A-Za-z_0-9."])-?\b\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b/g, '?')
      .replace(/\b(?:true|false|null)\b/gi, '?')
      // IN (?, ?, ?) -> IN (...)
      .replace(/\(\s*\?(?:\s*,\s*\?)+\s*\)/g, '(...)')
      .replace(/\s+/g, ' ')
      .trim()
  );
}
