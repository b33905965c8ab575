/**
 * terminate under faults: the server restarted between the plan and the confirmation (a stale
 * plan must kill nothing and say it is stale), and an immediate shutdown while a termination is
 * in flight (the audit trail keeps the intent and an outcome; the process ends).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { runTerminate } from '../../src/commands/terminate.js';
import { DbdoctorError } from '../../src/core/errors.js';
import { emptyFilters, type TerminateReport } from '../../src/core/terminate.js';
import { resolveConnectionTarget } from '../../src/db/target.js';
import { parseJson } from '../support/cli.js';
import { expectNoStack } from '../support/reliability.js';
import { observer, startCli, waitForDbdoctor } from '../support/faults.js';
import { alive, idleInTransaction, type Incident } from '../support/incidents.js';
import { startTestServer, } from '../support/server.js';

let state: string;
beforeEach(() => {
  state = mkdtempSync(join(tmpdir(), 'dbdoctor-rel-term-'));
});
afterEach(() => {
  rmSync(state, { recursive: true, force: true });
});

describe('the server restarts between the plan and the confirmation', () => {
  test('nothing is killed by the stale plan, and the plan is reported stale', async () => {
    const s = await startTestServer({ settings: { max_connections: 30 } });
    let before: Incident | undefined;
    let after: Incident | undefined;
    try {
      before = await idleInTransaction(s, 3, { app: 'rel-stale', user: 'app_user' });
      const target = resolveConnectionTarget({ dbname: s.url() }, {});
      let outcome: TerminateReport | DbdoctorError;
      try {
        outcome = await runTerminate(
          {
            target,
            session: {},
            filters: { ...emptyFilters(), apps: ['rel-stale'], states: ['idle in transaction'] },
            allDatabases: false,
            includeSuperusers: false,
            dryRun: false,
            yes: false,
            max: 10,
            cancelFirst: false,
            graceMs: 0,
            lockFile: join(state, 'terminate.lock'),
            auditLog: join(state, 'audit.jsonl'),
          },
          {
            prompter: {
              checkbox: async <V>(_m: string, choices: Array<{ value: V }>) => choices.map((c) => c.value),
              confirm: async () => {
                // The server restarts while the operator reads the plan; the application reconnects.
                await s.embedded!.restart();
                after = await idleInTransaction(s, 3, { app: 'rel-stale', user: 'app_user' });
                return true;
              },
            },
          },
        );
      } catch (err) {
        expect(err).toBeInstanceOf(DbdoctorError);
        outcome = err as DbdoctorError;
      }
      // The sessions of the same application that exist now were never in the plan: they live.
      expect(await alive(s, after!.pids)).toEqual([...after!.pids].sort((a, b) => a - b));
      const said = outcome instanceof DbdoctorError ? `${outcome.message} ${outcome.hint ?? ''}` : `${outcome.summary} ${outcome.hint ?? ''} ${outcome.results.map((r) => r.detail).join(' ')}`;
      if (!(outcome instanceof DbdoctorError)) {
        expect(outcome.status).not.toBe('done');
        expect(outcome.counts?.terminated ?? 0).toBe(0);
        expect(outcome.exit_code).not.toBe(0);
      }
      // Reported as what it is: the plan no longer describes the server.
      expect(said).toMatch(/stale|restarted|no longer|since the plan/i);
      // The audit trail records no termination.
      let lines: Array<{ event: string; outcome?: string }> = [];
      try {
        lines = readFileSync(join(state, 'audit.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
      } catch {
        lines = [];
      }
      expect(lines.filter((l) => l.outcome === 'terminated')).toHaveLength(0);
    } finally {
      await after?.release();
      await before?.release();
      await s.stop();
    }
  });
});

describe('immediate shutdown while a termination is in flight', () => {
  test('the process ends with one line and a documented code, and the audit trail holds the intent and an outcome', async () => {
    const s = await startTestServer({ settings: { max_connections: 30 } });
    let victim: Incident | undefined;
    let frozen = 0;
    try {
      victim = await idleInTransaction(s, 1, { app: 'rel-inflight', user: 'app_user' });
      // The victim cannot act on SIGTERM while stopped, so pg_terminate_backend(pid, timeout) waits
      // for its exit: the shutdown lands while dbdoctor's statement runs.
      frozen = victim.pids[0]!;
      process.kill(frozen, 'SIGSTOP');
      const obs = await observer(s);
      const audit = join(state, 'audit.jsonl');
      const run = startCli(['terminate', '--app', 'rel-inflight', '--yes', '--json', '-d', s.url(), '--audit-log', audit, '--lock-file', join(state, 'lock')], { timeoutMs: 40_000 });
      await waitForDbdoctor(obs, (b) => b.state === 'active' && /pg_terminate_backend/.test(b.query ?? ''), 15_000);
      await obs.end().catch(() => undefined);
      const stopping = s.embedded!.stop('immediate');
      // let the stopped victim go, so the postmaster need not wait for it
      setTimeout(() => process.kill(frozen, 'SIGCONT'), 200).unref();
      await stopping;
      const r = await run.done;
      expect(r.signal).toBeNull();
      expectNoStack(r);
      expect([1, 2]).toContain(r.exitCode);
      const doc = parseJson<{ schema: string; report: Record<string, unknown> }>(r);
      expect(doc.schema).toMatch(/^dbdoctor\.(terminate|error)$/);
      const lines = readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; pid: number; outcome?: string });
      expect(lines.filter((l) => l.event === 'intent' && l.pid === frozen)).toHaveLength(1);
      const outcomes = lines.filter((l) => l.event === 'outcome' && l.pid === frozen);
      expect(outcomes).toHaveLength(1);
      // never claimed done when the server died under it
      expect(outcomes[0]!.outcome).not.toBe('terminated');
      // the lock file is released
      const again = startCli(['terminate', '--app', 'x', '--yes', '-h', '127.0.0.1', '-p', '1', '--lock-file', join(state, 'lock'), '--audit-log', audit]);
      expect((await again.done).exitCode).toBe(2);
    } finally {
      if (frozen) {
        try {
          process.kill(frozen, 'SIGCONT');
        } catch {
          // gone already
        }
      }
      await victim?.release();
      await s.stop();
    }
  });
});

