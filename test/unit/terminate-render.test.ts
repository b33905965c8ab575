/** terminate's text: client-controlled text is data, tables fit 80 columns, notices say what to do. */
import { describe, expect, test } from '@jest/globals';
import { Chalk } from 'chalk';
import type { ActivitySnapshot, SessionRow } from '../../src/core/activity.js';
import { emptyFilters, finishReport, planTermination, type ReportBase, type SessionResult } from '../../src/core/terminate.js';
import { choiceLabel, renderPlan, renderResults, renderTerminate, terminateNotices } from '../../src/render/terminate.js';
import { sessionRow } from '../support/session-row.js';

const plain = new Chalk({ level: 0 });
const EVIL = 'evil\u001b[2J\u001b]0;pwned\u0007\nname\u202e';

function row(pid: number, over: Partial<SessionRow> = {}): SessionRow {
  return sessionRow({
    pid,
    application_name: 'worker',
    client_port: 5000,
    backend_start: `2026-11-23 10:00:00.${pid}+00`,
    state: 'idle in transaction',
    backend_age_ms: 1e6,
    xact_age_ms: 4e5,
    query_age_ms: 3e5,
    state_age_ms: 3e5,
    query: 'UPDATE orders SET status = 2 WHERE id = 1 /* a long statement that will not fit */',
    ...over,
  });
}

function report(rows: SessionRow[], results: SessionResult[] = []) {
  const snapshot: ActivitySnapshot = { server_version_num: 180000, taken_at: 'x', database: 'app', rows, prepared: [] };
  const fps = rows.map((r) => ({ pid: r.pid, backend_start: r.backend_start, state: r.state, state_change: 's', xact_start: 'x', query_start: 'q' }));
  const plan = planTermination(snapshot, fps, { filters: { ...emptyFilters(), states: ['idle in transaction'] }, allDatabases: false, includeSuperusers: false, cancelFirst: false });
  const base: ReportBase = {
    target: 'postgres://postgres@db1:5432/app',
    database: 'app',
    all_databases: false,
    include_superusers: false,
    filters: { ...emptyFilters(), states: ['idle in transaction'] },
    max: 10,
    dry_run: false,
    cancel_first: false,
    grace_ms: null,
    planned: plan.planned,
    excluded: plan.excluded,
    not_found_pids: [],
    hidden_sessions: 0,
    deselected: [],
    results,
    audit_log: '/var/lib/x/audit.jsonl',
    lock_file: null,
    run_id: 'r',
  };
  return base;
}

describe('terminate rendering', () => {
  test('application names, users and queries cannot move the cursor or retitle the terminal', () => {
    const rows = [row(101, { application_name: EVIL, usename: EVIL, query: `SELECT 1; ${EVIL}` }), row(102, { application_name: EVIL, superuser: true })];
    const results: SessionResult[] = [{ pid: 101, backend_start: 'b', app: EVIL, user: EVIL, action: 'terminate', outcome: 'changed', detail: `now ${EVIL}` }];
    const base = report(rows, results);
    const text = [renderTerminate(finishReport(base, 'partly_done'), plain), choiceLabel(base.planned[0]!)].join('\n');
    expect(text).not.toMatch(/[\u001b\u0007\u202e]/);
    expect(text).toContain('evil');
    expect(choiceLabel(base.planned[0]!)).not.toContain('\n');
  });

  test('the plan and the results fit 80 columns', () => {
    const rows = [row(4_194_301, { client_addr: 'fd00:1234:5678:9abc:def0:1234:5678:9abc', application_name: 'a-very-long-application-name-indeed' }), row(102), row(103, { is_self: true })];
    const base = report(rows, [{ pid: 102, backend_start: 'b', app: 'worker', user: 'u', action: 'terminate', outcome: 'terminated', detail: 'terminated; its exit confirmed' }]);
    const text = [renderTerminate(finishReport(base, 'partly_done'), plain, { columns: 80 }), renderPlan(finishReport(base, 'dry_run'), plain, 80)].join('\n');
    for (const line of text.split('\n')) expect([line.length <= 80, line]).toEqual([true, line]);
    expect(text).toContain('4194301');
  });

  test('the results: one line per session, within the width, whatever the detail', () => {
    const rows = [row(101), row(102), row(103)];
    const results: SessionResult[] = [
      { pid: 101, backend_start: 'b', app: 'files-api', user: 'u', action: 'cancel_then_terminate', outcome: 'terminated', detail: 'still running after the cancel and the grace period; terminated, its exit confirmed' },
      { pid: 102, backend_start: 'b', app: 'files-api', user: 'u', action: 'cancel_then_terminate', outcome: 'cancelled', detail: 'the query stopped after the cancel (now idle); session kept' },
      { pid: 103, backend_start: 'b', app: 'files-api', user: 'u', action: 'terminate', outcome: 'failed', detail: `SIGTERM sent, but ${'x'.repeat(200)}` },
    ];
    for (const columns of [80, 120]) {
      const lines = renderResults(finishReport(report(rows, results), 'partly_done'), plain, columns).split('\n');
      expect(lines).toHaveLength(results.length + 1);
      for (const l of lines) expect(l.length).toBeLessThanOrEqual(columns);
    }
  });

  test('said once: DRY RUN and NOT CONFIRMED are the label, not the label and the words again', () => {
    const base = report([row(101), row(102)]);
    const dry = renderTerminate(finishReport(base, 'dry_run'), plain).split('\n')[0]!;
    expect(dry).toBe('DRY RUN  2 sessions would be terminated');
    const no = renderTerminate(finishReport(base, 'not_confirmed', 'answered_no'), plain);
    expect(no.split('\n')[0]).toBe('NOT CONFIRMED  nothing was terminated');
    expect(no.match(/not confirmed/gi)).toHaveLength(1);
    // On one terminal, stderr does not say it again; without one (cron mail, a log), it does.
    expect(terminateNotices(finishReport(base, 'not_confirmed', 'answered_no'), { summaryShown: true })).toEqual([]);
    expect(terminateNotices(finishReport(base, 'not_confirmed', 'answered_no'))).toEqual(['dbdoctor: not confirmed; nothing was terminated']);
  });

  test('not confirmed, over --max: one clear line and a hint for stderr; done: nothing extra', () => {
    const base = report([row(101), row(102)]);
    expect(terminateNotices(finishReport(base, 'not_confirmed', 'no_tty'))).toEqual([
      'dbdoctor: not confirmed: no terminal to ask on and no --yes; nothing was terminated',
      'hint: check the plan above (or use --dry-run), then run again with --yes',
    ]);
    expect(terminateNotices(finishReport({ ...base, max: 1 }, 'over_max'))[0]).toBe('dbdoctor: the plan has 2 sessions, more than --max 1; nothing was terminated');
    const done: SessionResult[] = base.planned.map((p) => ({ pid: p.pid, backend_start: p.backend_start, app: p.app, user: p.user, action: 'terminate', outcome: 'terminated', detail: '' }));
    expect(terminateNotices(finishReport({ ...base, results: done }, 'done'))).toEqual([]);
  });
});
