/**
 * Files that ship beside the code (package.json, runbooks/): found from the package's root, which
 * is the nearest folder above this module holding package.json. The same code runs from src/
 * (tests), dist/ (tsc) and dist/app/ (the bundle bin/ runs), at different depths.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4 && !existsSync(join(dir, 'package.json')); i++) dir = dirname(dir);
  root = dir;
  return dir;
}

/** An absolute path inside the package, e.g. packageFile('runbooks'). */
export function packageFile(...segments: string[]): string {
  return join(packageRoot(), ...segments);
}
