/**
 * The rooms of the house (GUIDE, "Architecture"), checked in the source: SQL only in src/db,
 * decisions only in src/core (pure: no I/O, no process, no printing), printing only in src/render
 * and src/ui, exits only in src/cli.ts. Comments are left out of the search.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, test } from '@jest/globals';

const SRC = new URL('../../src/', import.meta.url).pathname;

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** The code of a file, comments removed (block comments, and line comments at the start of a line or after code). */
function code(file: string): string {
  return readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

const all = files(SRC).map((f) => ({ path: relative(SRC, f), code: code(f) }));
const outside = (room: string) => all.filter((f) => !f.path.startsWith(room));
const offenders = (list: typeof all, pattern: RegExp) => list.filter((f) => pattern.test(f.code)).map((f) => f.path);

describe('the rooms', () => {
  test('SQL runs only in src/db: no pg outside it, no query()', () => {
    expect(offenders(outside('db/'), /from ['"]pg(?:-cursor)?['"]|\.query\s*\(/)).toEqual([]);
  });

  test('src/core decides only: no I/O, no process, no printing, no SQL, no renderer', () => {
    const core = all.filter((f) => f.path.startsWith('core/'));
    expect(core.length).toBeGreaterThan(20);
    expect(offenders(core, /\bprocess\.|\bconsole\.|from ['"](?:node:)?(?:fs|child_process|os|tls|dns)['"]|from ['"](?:pg|chalk|cli-table3|execa|@inquirer\/[a-z-]+|commander)['"]/)).toEqual([]);
    expect(offenders(core, /from ['"]\.\.?\/(?:\.\.\/)?(?:db|render|ui|commands)\//)).toEqual([]);
  });

  test('printing only in src/render and src/ui', () => {
    const printers = all.filter((f) => !f.path.startsWith('render/') && !f.path.startsWith('ui/'));
    expect(offenders(printers, /\bconsole\.|process\.(?:stdout|stderr)\.write/)).toEqual([]);
    // (a type, such as chalk's ChalkInstance passed through, is not printing)
    expect(offenders(outside('ui/').filter((f) => !f.path.startsWith('render/')), /^import (?!type\b)[^;]*from ['"](?:chalk|cli-table3|@inquirer\/[a-z-]+)['"]/m)).toEqual([]);
  });

  test('exits only in src/cli.ts', () => {
    expect(offenders(all.filter((f) => f.path !== 'cli.ts'), /process\.exit\s*\(|process\.exitCode\s*=/)).toEqual([]);
  });
});
