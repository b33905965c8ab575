import type { Command } from 'commander';
import { type CheckReport, checkReportConnected, checkReportFailed, type StepResult } from '../core/check.js';
import { classifyConnectError, type RawError } from '../core/classify.js';
import { exitCodeForSeverity } from '../core/exit-codes.js';
import { describeTarget, type Target } from '../core/target.js';
import { resolveHost } from '../db/dns.js';
import { ConnectError, openSession, type SessionOptions } from '../db/session.js';
import { ping, readServerFacts } from '../db/sql/server-facts.js';
import { renderCheck } from '../render/check.js';
import { envelope, renderJson } from '../render/json.js';
import { addConnectionOptions, type CommandContext, type ConnectionCliOptions, sessionOptions, targetFrom, withReadProgress, refuseConsole } from './context.js';
import { nowMs } from '../db/clock.js';

/**
 * "Can we connect at all, and if not, why?" Walks DNS, TCP/TLS/start-up/auth, one round trip,
 * server facts and privileges; stops at the first failed step. Never prints, never exits.
 */
export async function runCheck(target: Target, opts: SessionOptions): Promise<CheckReport> {
  const steps: StepResult[] = [];
  const where = describeTarget(target);
  const ctx = {
    host: target.host,
    port: target.port,
    user: target.user,
    dbname: target.dbname,
    connectTimeoutMs: target.connectTimeoutMs,
    sslmode: target.sslmode,
  };
  try {
    const dns = await resolveHost(target.hostaddr ?? target.host, target.connectTimeoutMs);
    steps.push({ step: 'dns', ok: true, ms: dns.skipped ? null : dns.ms, detail: dns.skipped ? 'no lookup needed' : `${target.host} -> ${dns.addresses.join(', ')}` });
  } catch (err) {
    const failure = classifyConnectError(err as RawError, ctx);
    steps.push({ step: 'dns', ok: false, ms: null, detail: failure.message });
    return checkReportFailed(where, steps, failure);
  }
  let session: Awaited<ReturnType<typeof openSession>>;
  const connectStarted = nowMs();
  try {
    session = await openSession(target, opts);
  } catch (err) {
    if (!(err instanceof ConnectError)) throw err;
    steps.push({ step: err.failure.step, ok: false, ms: nowMs() - connectStarted, detail: err.failure.message });
    return checkReportFailed(where, steps, err.failure);
  }
  try {
    steps.push({ step: 'auth', ok: true, ms: session.connectMs, detail: `${transport(target)}, start-up and authentication as "${target.user}"` });
    const latency = await ping(session);
    steps.push({ step: 'query', ok: true, ms: latency, detail: 'SELECT 1 round trip' });
    const t0 = nowMs();
    const { server, limits } = await readServerFacts(session);
    steps.push({ step: 'facts', ok: true, ms: nowMs() - t0, detail: `database "${server.current_database}" as "${server.current_user}"` });
    return checkReportConnected({ target: where, steps, facts: server, limits, latencyMs: latency, connectMs: session.connectMs });
  } finally {
    await session.close();
  }
}

/** How the session went: over a Unix socket (never TLS, as in libpq), or TCP with its sslmode. */
function transport(t: Target): string {
  if (t.host.startsWith('/')) return `Unix socket ${t.host}`;
  return `TCP${t.hostaddr !== undefined ? ` to ${t.hostaddr}` : ''}, ${t.sslmode === 'disable' ? 'no TLS' : `sslmode=${t.sslmode}`}`;
}

export function checkCommand(program: Command, ctx: CommandContext): void {
  addConnectionOptions(
    program
      .command('check')
      .description('can I reach the server at all, and if not, exactly why? what can my role see and do?'),
  )
    .option('--json', 'one JSON document on stdout')
    .action(async (opts: ConnectionCliOptions) => {
      ctx.json = Boolean(opts.json);
      const target = targetFrom(opts, ctx);
      refuseConsole(target, 'check');
      const report = await withReadProgress(ctx, target, 'server facts', () => runCheck(target, sessionOptions(opts, ctx)));
      ctx.output.out(opts.json ? renderJson(envelope('check', report, ctx.version)) : renderCheck(report, ctx.output.style));
      ctx.exitCode = exitCodeForSeverity(report.status);
    });
}
