/**
 * Every decision node id is an anchor in runbooks/; this table says in which file. A test checks
 * both directions: every id here has its anchor, and every link the code prints resolves.
 */
export const RUNBOOK_FILES = {
  'cannot-connect': 'cannot-connect.md',
  'out-of-slots': 'out-of-slots.md',
  leaks: 'leaks.md',
  'blocking-locks': 'blocking-locks.md',
  'slow-queries': 'slow-queries.md',
  settings: 'settings.md',
  pgbouncer: 'pgbouncer.md',
  trends: 'trends.md',
} as const;

export type RunbookFile = keyof typeof RUNBOOK_FILES;

/**
 * Anchor -> runbook file, for the anchors outside diagnose's tree (check's connect steps, the
 * runbooks' own sections). The tree's nodes link to the runbook of their room
 * (src/core/diagnose/*.ts; NODE_RUNBOOKS in src/core/diagnose.ts lists them).
 */
export const RUNBOOK_NODES: Record<string, RunbookFile> = {
  'cannot-connect': 'cannot-connect',
  'dns': 'cannot-connect',
  'refused': 'cannot-connect',
  'timeout': 'cannot-connect',
  'tls': 'cannot-connect',
  'auth': 'cannot-connect',
  'database-missing': 'cannot-connect',
  'not-accepting': 'cannot-connect',
  'protocol': 'cannot-connect',
  'out-of-slots': 'out-of-slots',
  'connection-limit': 'out-of-slots',
  'leaks': 'leaks',
  'listeners': 'leaks',
  'blocking-locks': 'blocking-locks',
  'prepared-transactions': 'blocking-locks',
  'lock-cycles': 'blocking-locks',
  'slow-queries': 'slow-queries',
  'settings': 'settings',
  'pgbouncer': 'pgbouncer',
  'pgbouncer-clients-waiting': 'pgbouncer',
  'pgbouncer-pool-saturated': 'pgbouncer',
  'pgbouncer-servers-in-transaction': 'pgbouncer',
  'pgbouncer-max-client-conn': 'pgbouncer',
  'pgbouncer-guards': 'pgbouncer',
  'pgbouncer-errors': 'pgbouncer',
  'through-a-pooler': 'pgbouncer',
  trends: 'trends',
};

/** Maps a connect failure's step and cause to the runbook node that explains it. */
export function connectNode(step: string, cause: string): string {
  if (cause.startsWith('pgbouncer_')) return 'pgbouncer-errors';
  if (step === 'dns') return 'dns';
  if (cause === 'timeout') return 'timeout';
  if (step === 'tcp') return 'refused';
  if (step === 'tls') return 'tls';
  if (step === 'auth') return 'auth';
  if (step === 'database') return 'database-missing';
  if (step === 'slots') return cause === 'connection_limit' ? 'connection-limit' : 'out-of-slots';
  if (step === 'startup') return 'not-accepting';
  return 'protocol';
}

export function runbookLink(node: string): string {
  const file = RUNBOOK_FILES[RUNBOOK_NODES[node] ?? 'cannot-connect'];
  return `runbooks/${file}#${node}`;
}
