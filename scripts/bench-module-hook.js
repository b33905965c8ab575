// Benchmark helper: records every module a Node process loads, to check that a command's
// startup does not pull in heavy modules (pg, @inquirer/prompts, execa). Used as
//   BENCH_MODULE_LOG=/tmp/file node --import ./scripts/bench-module-hook.js bin/dbdoctor.cjs --version
// On the main thread it registers itself as a module hook; on the hooks thread it appends each
// resolved URL (one per line) to $BENCH_MODULE_LOG. Not used in timed runs.
import { appendFileSync } from 'node:fs';
import Module, { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';

const logFile = process.env.BENCH_MODULE_LOG;

if (isMainThread) {
  register(import.meta.url);
  // CommonJS packages (cli-table3, pg) load their dependencies through require(), which the
  // ESM hooks do not see: record those too.
  const load = Module._load;
  Module._load = function (request, parent, isMain) {
    const out = load.call(this, request, parent, isMain);
    if (logFile) {
      try {
        appendFileSync(logFile, `${request.startsWith('node:') ? request : Module._resolveFilename(request, parent, isMain)}\n`);
      } catch {
        // builtins without the node: prefix
        appendFileSync(logFile, `node:${request}\n`);
      }
    }
    return out;
  };
}

export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  if (logFile && result?.url) appendFileSync(logFile, `${result.url}\n`);
  return result;
}
