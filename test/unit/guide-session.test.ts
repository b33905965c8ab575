/**
 * The walk's loop with its world injected: a scripted menu (the terminal), a doctor whose
 * diagnoses the test writes, and a command tree whose commands record what they were run with.
 * No database: the real walk against a real server is in test/e2e/guide-pty.test.ts.
 */
import { describe, expect, test } from '@jest/globals';
import { Command } from 'commander';
import type { Diagnosis, Doctor } from '../../src/commands/doctor.js';
import { runGuideSession } from '../../src/commands/guide.js';
import type { CommandContext } from '../../src/commands/context.js';
import { DbdoctorError, InterruptedError } from '../../src/core/errors.js';
import { ExitCode, type Severity } from '../../src/core/exit-codes.js';
import type { GuideFinding } from '../../src/core/guide.js';
import type { Target } from '../../src/core/target.js';
import type { Menu, MenuChoice } from '../../src/ui/prompts.js';
import { createProgress } from '../../src/ui/progress.js';
import { captureOutput } from '../support/output.js';

const target: Target = { host: 'db1', port: 5432, user: 'oncall', dbname: 'app', password: 's3cret', sslmode: 'disable', sslrootcert: undefined, connectTimeoutMs: 5000, service: undefined };

function world() {
  const { output, out, err } = captureOutput({ tty: true });
  const ctx: CommandContext = { output, env: {}, signal: new AbortController().signal, version: 'test', exitCode: ExitCode.OK, json: false };
  const runs: string[][] = [];
  const factory = (c: CommandContext) => {
    const program = new Command().exitOverride();
    for (const name of ['locks', 'connections', 'terminate', 'runbook']) {
      program
        .command(name)
        .allowUnknownOption()
        .allowExcessArguments()
        .action((_opts: unknown, cmd: Command) => {
          runs.push([name, ...cmd.args]);
          if (name === 'locks' && cmd.args.includes('--fail')) throw new DbdoctorError('the server went away', { exitCode: ExitCode.CRITICAL, hint: 'run: dbdoctor check' });
          c.output.out(`ran ${name}`);
          c.exitCode = ExitCode.OK;
        });
    }
    return program;
  };
  return { out, err, ctx, runs, factory };
}

function diagnosis(severity: Severity, findings: GuideFinding[]): Diagnosis {
  return { severity, findings, report: {}, render: () => `VERDICT ${severity.toUpperCase()}` };
}

const leak: GuideFinding = {
  id: 'idle-in-transaction',
  severity: 'warning',
  title: 'worker holds 3 sessions idle in transaction',
  cause: 'a missing COMMIT',
  next: [
    { text: 'terminate them', command: 'dbdoctor terminate --state "idle in transaction" --app worker --older-than 30s', argv: ['terminate', '--state', 'idle in transaction', '--app', 'worker', '--older-than', '30s'] },
    { text: 'list them', command: 'dbdoctor connections --app worker --list', argv: ['connections', '--app', 'worker', '--list'] },
    { text: 'read the runbook section', command: 'dbdoctor runbook idle-in-transaction', argv: ['runbook', 'idle-in-transaction'] },
  ],
  runbook: 'idle-in-transaction',
};

/** A menu that answers from a script: each answer picks the first choice whose label matches. */
function scripted(answers: Array<RegExp | Error>) {
  const asked: Array<{ message: string; labels: string[]; default: unknown }> = [];
  const menu: Menu = {
    async select<T>(message: string, choices: Array<MenuChoice<T> | 'separator'>, opts: { default?: T } = {}) {
      const list = choices.filter((c): c is MenuChoice<T> => c !== 'separator');
      asked.push({ message, labels: list.map((c) => c.name), default: opts.default });
      const next = answers.shift();
      if (!next) throw new Error(`no answer scripted for: ${message}`);
      if (next instanceof Error) throw next;
      const hit = list.find((c) => next.test(c.name));
      if (!hit) throw new Error(`no choice ${next} in ${message}: ${list.map((c) => c.name).join(' | ')}`);
      return hit.value;
    },
    input: async () => {
      throw new Error('not expected');
    },
    password: async () => {
      throw new Error('not expected');
    },
    confirm: async () => false,
  };
  return { menu, asked };
}

describe('the guided walk loop', () => {
  test('pick a finding, inspect, clean up, diagnose again (the default after a clean-up), quit', async () => {
    const w = world();
    const diagnoses = [diagnosis('warning', [leak]), diagnosis('ok', [])];
    const doctor: Doctor = {
      diagnose: async () => diagnoses.shift()!,
      terminate: async () => {
        throw new Error('the walk runs terminate as a command, with its own prompts');
      },
    };
    const { menu, asked } = scripted([/worker holds/, /Inspect: dbdoctor connections/, /Clean up: dbdoctor terminate/, /Diagnose again/, /Quit/]);
    await runGuideSession(w.ctx, w.factory, { target, doctor, menu, progress: createProgress(w.ctx.output, true), terminateArgs: ['--audit-log', '/tmp/a.jsonl'] });

    expect(w.out.join('\n')).toMatch(/VERDICT WARNING[\s\S]*ran connections[\s\S]*ran terminate[\s\S]*VERDICT OK/);
    // The steps ran with the walk's target (one conninfo string) and the connect timeout.
    const [connections, terminate] = w.runs;
    expect(connections!.slice(0, 4)).toEqual(['connections', '--app', 'worker', '--list']);
    expect(terminate!.slice(0, 7)).toEqual(['terminate', '--state', 'idle in transaction', '--app', 'worker', '--older-than', '30s']);
    for (const run of [connections!, terminate!]) {
      const d = run[run.indexOf('-d') + 1]!;
      expect(d).toContain("host='db1'");
      expect(d).toContain("password='s3cret'");
      expect(run).toContain('--connect-timeout');
    }
    expect(terminate!.slice(-2)).toEqual(['--audit-log', '/tmp/a.jsonl']);
    // The password is never printed; the commands are shown as one could paste them.
    expect([...w.out, ...w.err].join('\n')).not.toContain('s3cret');
    expect(w.out).toContain('\n$ dbdoctor terminate --state "idle in transaction" --app worker --older-than 30s\n');

    // The finding's menu: inspections, the clean-up, the runbook; then the way out.
    expect(asked[1]!.labels).toEqual([
      'Inspect: dbdoctor connections --app worker --list',
      'Clean up: dbdoctor terminate --state "idle in transaction" --app worker --older-than 30s',
      'Read the runbook: dbdoctor runbook idle-in-transaction',
      'Diagnose again (see the effect)',
      'Back to the findings',
      'Quit',
    ]);
    expect(asked[2]!.default).toBeUndefined();
    expect(asked[3]!.default).toBe('diagnose');
    // After an OK diagnosis: nothing to walk through.
    expect(asked[4]!.labels).toEqual(['Diagnose again', 'Quit']);
    expect(w.out.join('\n')).toMatch(/Nothing to walk through/);
  });

  test('a failing step is reported in one line with its hint, and the walk goes on', async () => {
    const w = world();
    const blocking: GuideFinding = { id: 'blocking', severity: 'critical', title: 'pid 7 blocks 3', next: [{ text: 'see', command: 'dbdoctor locks --fail', argv: ['locks', '--fail'] }], runbook: null };
    const doctor: Doctor = { diagnose: async () => diagnosis('critical', [blocking]), terminate: async () => Promise.reject(new Error('unused')) };
    const { menu } = scripted([/pid 7 blocks/, /Inspect: dbdoctor locks --fail/, /Back to the findings/, /Quit/]);
    await runGuideSession(w.ctx, w.factory, { target, doctor, menu, progress: createProgress(w.ctx.output, true) });
    expect(w.err).toEqual(['dbdoctor: the server went away\n', 'hint: run: dbdoctor check\n']);
  });

  test('Ctrl-C at a prompt ends the walk with InterruptedError (exit 130 in cli.ts)', async () => {
    const w = world();
    const doctor: Doctor = { diagnose: async () => diagnosis('warning', [leak]), terminate: async () => Promise.reject(new Error('unused')) };
    const { menu } = scripted([/worker holds/, new InterruptedError()]);
    await expect(runGuideSession(w.ctx, w.factory, { target, doctor, menu, progress: createProgress(w.ctx.output, true) })).rejects.toBeInstanceOf(InterruptedError);
    expect(w.runs).toEqual([]);
  });

  test('a diagnosis that fails is reported, and the walk offers to diagnose again', async () => {
    const w = world();
    let calls = 0;
    const doctor: Doctor = {
      diagnose: async () => {
        calls++;
        if (calls === 1) throw new DbdoctorError('a dbdoctor query ran into its statement_timeout (15000 ms)', { exitCode: ExitCode.UNKNOWN, hint: 'raise --statement-timeout' });
        return diagnosis('ok', []);
      },
      terminate: async () => Promise.reject(new Error('unused')),
    };
    const { menu, asked } = scripted([/Diagnose again/, /Quit/]);
    await runGuideSession(w.ctx, w.factory, { target, doctor, menu, progress: createProgress(w.ctx.output, true) });
    expect(w.err[0]).toMatch(/statement_timeout/);
    expect(asked[0]!.labels).toEqual(['Diagnose again', 'Quit']);
    expect(calls).toBe(2);
  });
});
