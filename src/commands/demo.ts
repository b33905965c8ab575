/**
 * `dbdoctor demo`: a throwaway PostgreSQL (npm-shipped binaries, or PostgreSQL found on the
 * machine) with seeds/000's incident in it. On a terminal it starts the guided walk against that
 * server; without one (or with --yes) it runs diagnose, the clean-ups diagnose recommends (through
 * terminate's programmatic twin), and diagnose again, and prints before and after.
 *
 * The server and its temporary directory are ALWAYS torn down: on success, on errors, on Ctrl-C
 * (the abort reaches every step, then `finally` stops the server), on a second Ctrl-C (cli.ts exits
 * at once; a synchronous 'exit' handler kills the server by pid and removes its directory), and on
 * SIGTERM/SIGHUP (the same handler, then the signal is raised again).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { DbdoctorError, InterruptedError } from '../core/errors.js';
import { ExitCode, exitCodeForSeverity, type Severity } from '../core/exit-codes.js';
import { coveredByEarlier, recommendedTerminations } from '../core/guide.js';
import { shellCommand } from '../core/printed.js';
import { type Target, withoutConnectionEnv } from '../core/target.js';
import {
  BLOCKER_APP,
  createDemoIncident,
  DEMO_MAX_CONNECTIONS,
  type DemoIncident,
  LEAKING_APP,
  REPORT_APP,
  waitForCalm,
} from '../db/demo-incident.js';
import { OWN_SERVER_OPTIONS, type RunningServer, startServer } from '../db/embedded.js';
import { findPgBinaries, noBinariesAdvice } from '../db/find-postgres.js';
import type { SessionOptions } from '../db/session.js';
import {
  type DemoIncidentInfo,
  type DemoServerInfo,
  renderDemoAct,
  renderDemoCommand,
  renderDemoIncident,
  renderDemoIntro,
  renderDemoSummary,
  renderDemoTeardown,
} from '../render/demo.js';
import { envelope, renderJson } from '../render/json.js';
import { createProgress, type Progress } from '../ui/progress.js';
import type { CommandContext } from './context.js';
import { type Cleanup, type Diagnosis, type Doctor, loadDoctor, type ThresholdFlags } from './doctor.js';
import { type ProgramFactory, runGuideSession } from './guide.js';

/** Superuser slots PostgreSQL keeps back (its default); the demo's arithmetic relies on it. */
const SUPERUSER_RESERVED = 3;

/**
 * The thresholds the demo diagnoses with: the incident is seconds old, not minutes, so the leak
 * and slow-work thresholds are lowered to match (every other threshold keeps its default).
 */
export const DEMO_THRESHOLDS: ThresholdFlags = {
  idle_in_transaction: '2s',
  client_wait: '2s',
  long_query: '2s',
  lock_wait: '1s',
};
/** How long the incident ages before the first diagnosis (past the thresholds above). */
export const DEMO_AGE_MS = 3000;

export interface DemoOptions {
  yes?: boolean;
  json?: boolean;
}

export interface DemoReport {
  server: DemoServerInfo;
  incident: DemoIncidentInfo;
  thresholds: ThresholdFlags;
  before: unknown;
  cleanup: Array<{ command: string[]; exit_code: number; terminated: number; cancelled: number; report: unknown }>;
  after: unknown;
  verdict_before: Severity;
  verdict_after: Severity;
  torn_down: boolean;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new InterruptedError());
    const onAbort = () => {
      clearTimeout(timer);
      reject(new InterruptedError());
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

// ---------------------------------------------------------------------------------------------
// The server's life: start, guard, always tear down.

function noBinaries(): DbdoctorError {
  const { looked, hint, major, exact } = noBinariesAdvice();
  const which = exact ? `PostgreSQL ${major} server binaries (DBDOCTOR_PG_MAJOR)` : 'PostgreSQL server binaries (14 or newer)';
  return new DbdoctorError(`the demo needs ${which}, and none were found in ${looked}`, {
    exitCode: ExitCode.UNKNOWN,
    cause: 'no_server_binaries',
    hint,
  });
}

/**
 * Whether the process is still running (a zombie, or no process, is not). Linux reads /proc;
 * elsewhere (macOS has no /proc) `ps` tells a zombie, which kill(pid, 0) still finds: the exit
 * handler runs when Node no longer reaps its children.
 */
function running(pid: number): boolean {
  if (pid <= 0) return false;
  if (existsSync('/proc/self')) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      return state !== 'Z' && state !== 'X';
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  if (process.platform === 'win32') return true;
  try {
    const state = execFileSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 2000 }).trim();
    return state !== '' && !state.startsWith('Z');
  } catch {
    return false; // ps exits 1 when there is no such process
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Synchronous last-resort teardown, for when the event loop will not run again (process.exit on a
 * second Ctrl-C, SIGTERM, SIGHUP): immediate shutdown by pid, bounded wait, SIGKILL, remove the
 * directory. The wait outlasts the 5 s after which the postmaster SIGKILLs children that ignore an
 * immediate shutdown, so it is not SIGKILLed itself (which would orphan them) before it has.
 */
function emergencyTeardown(server: RunningServer): void {
  const pid = server.pid;
  if (!server.exited && running(pid)) {
    try {
      process.kill(pid, 'SIGQUIT');
    } catch {
      // already gone
    }
    const deadline = Date.now() + 6000;
    while (running(pid) && Date.now() < deadline) sleepSync(20);
    if (running(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
      const killDeadline = Date.now() + 2000;
      while (running(pid) && Date.now() < killDeadline) sleepSync(20);
    }
  }
  try {
    rmSync(server.dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 50 });
  } catch {
    // nothing more can be done while exiting
  }
}

/** Installs the last-resort handlers; returns the function that removes them. */
function guard(server: RunningServer): () => void {
  const onExit = () => emergencyTeardown(server);
  const onSignal = (sig: NodeJS.Signals) => {
    emergencyTeardown(server);
    disarm();
    process.kill(process.pid, sig);
  };
  const disarm = () => {
    process.off('exit', onExit);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
  };
  process.on('exit', onExit);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  return disarm;
}

/** Starts the demo's server, runs `fn`, and always stops the server and removes its directory. */
export async function withDemoServer<T>(progress: Progress, signal: AbortSignal, fn: (server: RunningServer) => Promise<T>): Promise<T> {
  if (signal.aborted) throw new InterruptedError();
  if (!findPgBinaries()) throw noBinaries();
  let server: RunningServer;
  progress.start('starting a throwaway PostgreSQL');
  try {
    server = await startServer({
      settings: { max_connections: DEMO_MAX_CONNECTIONS, superuser_reserved_connections: SUPERUSER_RESERVED },
      onProgress: (step) => progress.update(step),
    });
  } catch (err) {
    progress.stop();
    // A terminal's Ctrl-C also reaches initdb (same process group) while Node is blocked on it.
    if (signal.aborted || (err as { signal?: unknown }).signal === 'SIGINT') throw new InterruptedError();
    const first = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
    if (/no PostgreSQL .*binaries found/.test(first)) throw noBinaries();
    throw new DbdoctorError(`could not start the demo's PostgreSQL: ${first}`, {
      exitCode: ExitCode.UNKNOWN,
      cause: 'demo_server_failed',
      hint: 'check that the temporary directory is writable and that a loopback port is free; DBDOCTOR_PG_MAJOR picks another major',
    });
  }
  const disarm = guard(server);
  try {
    progress.stop();
    if (signal.aborted) throw new InterruptedError();
    return await fn(server);
  } finally {
    progress.start('stopping the demo server and removing its data');
    try {
      await server.stop('fast');
    } catch {
      emergencyTeardown(server);
    }
    if (existsSync(server.dir)) emergencyTeardown(server);
    disarm();
    progress.stop();
  }
}

/** The demo's clean-ups are audited in its own directory (removed with it), not in the user's log. */
export function demoCleanupFiles(server: RunningServer): { auditLog: string; lockFile: string } {
  return { auditLog: join(server.dir, 'audit.jsonl'), lockFile: join(server.dir, 'terminate.lock') };
}

export function demoTarget(server: RunningServer, dbname: string): Target {
  return {
    host: server.host,
    port: server.port,
    user: server.superuser,
    dbname,
    password: server.password,
    sslmode: 'disable',
    sslrootcert: undefined,
    connectTimeoutMs: 5000,
    service: undefined,
    // Set, so that pg does not send the user's PGOPTIONS (it does whenever `options` is empty).
    options: OWN_SERVER_OPTIONS,
  };
}

function serverInfo(server: RunningServer): DemoServerInfo {
  return {
    major: server.major,
    host: server.host,
    port: server.port,
    pid: server.pid,
    data_directory: server.dir,
    max_connections: DEMO_MAX_CONNECTIONS,
    ordinary_slots: DEMO_MAX_CONNECTIONS - SUPERUSER_RESERVED,
  };
}

function incidentInfo(i: DemoIncident): DemoIncidentInfo {
  return {
    database: i.database,
    leaking_app: LEAKING_APP,
    blocker_app: BLOCKER_APP,
    long_query_app: REPORT_APP,
    pids: {
      idle: i.pids.idle,
      client_read: i.pids.clientRead,
      idle_in_transaction: i.pids.idleInTransaction,
      blocker: i.pids.blocker,
      waiters: i.pids.waiters,
      long_query: i.pids.longQuery,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The non-interactive run: diagnose, clean up as recommended, diagnose again.

export interface DemoEvents {
  started?(server: DemoServerInfo): void;
  incident?(incident: DemoIncidentInfo): void;
  before?(d: Diagnosis): void;
  cleanupStarting?(): void;
  cleanupSkipped?(argv: string[]): void;
  cleanup?(c: Cleanup): void;
  after?(d: Diagnosis): void;
}

export interface DemoDeps {
  doctor: Doctor;
  progress: Progress;
  signal: AbortSignal;
  events?: DemoEvents;
}

/** Builds the incident on a running demo server and holds it while `fn` runs. */
async function withIncident<T>(server: RunningServer, deps: Pick<DemoDeps, 'progress' | 'signal' | 'events'>, fn: (incident: DemoIncident) => Promise<T>): Promise<T> {
  deps.progress.start('recreating the incident');
  const incident = await createDemoIncident(server, { signal: deps.signal, onStep: (s) => deps.progress.update(`recreating the incident: ${s}`) });
  try {
    deps.progress.stop();
    deps.events?.incident?.(incidentInfo(incident));
    return await fn(incident);
  } finally {
    await incident.release();
  }
}

export async function runDemo(server: RunningServer, deps: DemoDeps): Promise<Omit<DemoReport, 'torn_down'>> {
  const { doctor, progress, signal, events } = deps;
  const info = serverInfo(server);
  events?.started?.(info);
  return withIncident(server, deps, async (incident) => {
    const target = demoTarget(server, incident.database);
    const sessionOpts: SessionOptions = { signal };
    progress.start(`letting the incident age past the demo's thresholds (${DEMO_AGE_MS / 1000}s)`);
    await sleep(DEMO_AGE_MS, signal);
    progress.update('diagnosing');
    const before = await doctor.diagnose(target, sessionOpts, DEMO_THRESHOLDS);
    progress.stop();
    events?.before?.(before);

    const cleanup: Cleanup[] = [];
    const ended = new Set<number>();
    events?.cleanupStarting?.();
    for (const argv of recommendedTerminations(before.findings)) {
      // A finding may recommend by pid what an earlier clean-up (by filters) already ended.
      if (coveredByEarlier(argv, ended)) {
        events?.cleanupSkipped?.(argv);
        continue;
      }
      progress.start(`running the recommended clean-up: ${shellCommand(argv) ?? 'dbdoctor terminate'}`);
      const c = await doctor.terminate(target, sessionOpts, argv, demoCleanupFiles(server));
      progress.stop();
      for (const pid of c.ended) ended.add(pid);
      cleanup.push(c);
      events?.cleanup?.(c);
    }

    progress.start('waiting for the sessions that were waiting to finish');
    await waitForCalm(server, incident, { signal });
    progress.update('diagnosing again');
    const after = await doctor.diagnose(target, sessionOpts, DEMO_THRESHOLDS);
    progress.stop();
    events?.after?.(after);
    return {
      server: info,
      incident: incidentInfo(incident),
      thresholds: DEMO_THRESHOLDS,
      before: before.report,
      cleanup: cleanup.map((c) => ({ command: ['terminate', ...c.argv.slice(1), '--yes'], exit_code: c.exitCode, terminated: c.terminated, cancelled: c.cancelled, report: c.report })),
      after: after.report,
      verdict_before: before.severity,
      verdict_after: after.severity,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// The command.

export function demoCommand(program: Command, ctx: CommandContext, programFactory: ProgramFactory): void {
  program
    .command('demo')
    .description('a throwaway PostgreSQL with a real incident in it: the guided walk on a terminal, else diagnose, clean up, diagnose again')
    .option('-y, --yes', 'no guided walk: diagnose, run the recommended clean-up, diagnose again (the default without a terminal)')
    .option('--json', 'with --yes (or without a terminal): one JSON document on stdout with the before, the clean-up and the after')
    .action(async (opts: DemoOptions) => {
      ctx.json = Boolean(opts.json);
      const { output } = ctx;
      const style = output.style;
      const progress = createProgress(output, ctx.json);
      const interactive = !opts.yes && !opts.json && output.stdinIsTTY && output.stderrIsTTY;
      const doctor = await loadDoctor(ctx);
      // Each block of the story, followed by one blank line.
      const block = (text: string) => output.out(`${text.replace(/\n+$/, '')}\n\n`);

      if (interactive) {
        let info: DemoServerInfo | undefined;
        await withDemoServer(progress, ctx.signal, async (server) => {
          info = serverInfo(server);
          block(renderDemoIntro(info, style));
          await withIncident(server, { progress, signal: ctx.signal, events: { incident: (i) => block(renderDemoIncident(i, info!, style)) } }, async (incident) => {
            progress.start(`letting the incident age past the demo's thresholds (${DEMO_AGE_MS / 1000}s)`);
            await sleep(DEMO_AGE_MS, ctx.signal);
            progress.stop();
            const files = demoCleanupFiles(server);
            // The walk's steps connect to the demo's server: the user's PG* settings are not for it.
            await runGuideSession({ ...ctx, env: withoutConnectionEnv(ctx.env) }, programFactory, {
              target: demoTarget(server, incident.database),
              doctor,
              progress,
              thresholds: DEMO_THRESHOLDS,
              extraArgs: [],
              terminateArgs: ['--audit-log', files.auditLog, '--lock-file', files.lockFile],
              intro: 'The guided walk, against the demo server: pick a finding to see its next steps. Ctrl-C leaves at any time.',
            });
          });
        });
        if (info) output.out(renderDemoTeardown(info, style, { interactive: true }));
        ctx.exitCode = ExitCode.OK;
        return;
      }

      let info: DemoServerInfo | undefined;
      const report = await withDemoServer(progress, ctx.signal, (server) =>
        runDemo(server, {
          doctor,
          progress,
          signal: ctx.signal,
          events: ctx.json
            ? {}
            : {
                started: (s) => {
                  info = s;
                  block(renderDemoIntro(s, style));
                },
                incident: (i) => block(renderDemoIncident(i, info!, style)),
                before: (d) => block(`${renderDemoAct(1, 'diagnose', style)}\n\n${d.render(style)}`),
                cleanupStarting: () => block(renderDemoAct(2, 'the clean-ups diagnose recommends, run with --yes', style)),
                cleanupSkipped: (argv) => block(`${renderDemoCommand([...argv, '--yes'], style)}\n${style.dim('skipped: the clean-ups above already ended these sessions')}`),
                cleanup: (c) => block(`${renderDemoCommand([...c.argv, '--yes'], style)}\n${c.render(style)}`),
                after: (d) => block(`${renderDemoAct(3, 'diagnose again', style)}\n\n${d.render(style)}`),
              },
        }),
      );
      const tornDown = !existsSync(report.server.data_directory);
      if (ctx.json) {
        output.out(renderJson(envelope('demo', { ...report, torn_down: tornDown }, ctx.version)));
      } else {
        const sum = (k: 'terminated' | 'cancelled') => report.cleanup.reduce((n, c) => n + c[k], 0);
        block(renderDemoSummary(report.verdict_before, report.verdict_after, { terminated: sum('terminated'), cancelled: sum('cancelled') }, style));
        output.out(renderDemoTeardown(report.server, style));
      }
      ctx.exitCode = report.verdict_after === 'ok' || report.verdict_after === 'info' ? ExitCode.OK : exitCodeForSeverity(report.verdict_after);
    });
}
