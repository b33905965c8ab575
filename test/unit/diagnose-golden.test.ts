/**
 * The decision tree's answers, pinned: for every recorded snapshot (and a refused connection, a
 * failed gathering and a snapshot without lock detail), under the default thresholds and under
 * low ones that make every node speak, diagnose() gives exactly the recorded report
 * (test/unit/fixtures/diagnose/reports/). A refactoring of the tree must leave them all equal.
 *
 * When a change to what diagnose says is meant, record them again and review the diff:
 * `DBDOCTOR_RECORD_REPORTS=1 npx jest test/unit/diagnose-golden.test.ts` (then `git diff`).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, test } from '@jest/globals';
import { classifyConnectError } from '../../src/core/classify.js';
import { type DiagnoseFacts, diagnose } from '../../src/core/diagnose.js';
import { DEFAULT_THRESHOLDS, resolveThresholds } from '../../src/core/thresholds.js';
import { type FixtureName, fixture } from '../support/diagnose.js';

const NAMES: FixtureName[] = ['seeds-000', 'seeds-000-pg14', 'lock-chain', 'same-statement', 'listeners', 'healthy-busy', 'unprivileged'];
const LOW = resolveThresholds({
  flags: {
    idle_in_transaction: '1s',
    client_wait: '1s',
    idle: '1s',
    idle_pool: '2',
    lock_wait: '0s',
    long_query: '1s',
    same_statement: '2',
    same_statement_age: '0s',
    seq_scan_rows: '1',
  },
});

function variants(): Array<[string, DiagnoseFacts]> {
  const out: Array<[string, DiagnoseFacts]> = NAMES.map((n) => [n, fixture(n)]);
  const refused = fixture('healthy-busy');
  out.push([
    'refused',
    { ...refused, connect: { ok: false, failure: classifyConnectError({ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:5432' }, { host: '127.0.0.1', port: 5432, user: 'postgres', dbname: 'app', connectTimeoutMs: 5000, sslmode: 'prefer' }), ms: 3 }, server: null, activity: null },
  ]);
  const gone = fixture('seeds-000');
  out.push(['gather-error', { ...gone, gather_error: { cause: 'server_gone', message: 'the server went away', hint: 'run: dbdoctor check', exit_code: 2 } }]);
  const noDetail = fixture('lock-chain');
  for (const r of noDetail.activity!.rows) r.wait_lock = null;
  out.push(['lock-chain-no-detail', noDetail]);
  return out;
}

const RECORD = process.env.DBDOCTOR_RECORD_REPORTS === '1';

describe.each([
  ['default', DEFAULT_THRESHOLDS],
  ['low', LOW],
] as const)('diagnose under %s thresholds gives the recorded report', (label, t) => {
  test.each(variants())('%s', (name, facts) => {
    const file = new URL(`fixtures/diagnose/reports/${name}.${label}.json`, import.meta.url);
    const report = JSON.parse(JSON.stringify(diagnose(facts, t)));
    if (RECORD) writeFileSync(file, `${JSON.stringify(report, null, 1)}\n`);
    expect(existsSync(file)).toBe(true);
    expect(report).toEqual(JSON.parse(readFileSync(file, 'utf8')));
  });
});
