// A module-resolution hook for tests: reports every heavy package a process imports, on stderr.
export async function resolve(specifier, context, next) {
  if (/^(pg|pg-cursor|execa|@inquirer\/prompts|inquirer)$/.test(specifier)) process.stderr.write(`HEAVY-IMPORT ${specifier}\n`);
  return next(specifier, context);
}
