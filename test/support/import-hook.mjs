// A module-resolution hook for tests: reports on stderr every heavy package a process imports by
// name (HEAVY-IMPORT pg) and every file it loads from the bundle (BUNDLE-FILE dist/app/x.js); the
// bundle's metafile tells which packages such a file holds.
export async function resolve(specifier, context, next) {
  if (/^(pg|pg-cursor|execa|@inquirer\/prompts|inquirer)$/.test(specifier)) process.stderr.write(`HEAVY-IMPORT ${specifier}\n`);
  const result = await next(specifier, context);
  const m = /\/(dist\/app\/[^/]+\.js)$/.exec(result.url);
  if (m) process.stderr.write(`BUNDLE-FILE ${m[1]}\n`);
  return result;
}
