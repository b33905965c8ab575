import type { Command } from 'commander';
import { consoleConninfo, type PgBouncerReport, pgbouncerReport } from '../core/pgbouncer.js';
import { describeTarget, type Target } from '../core/target.js';
import { readConsole } from '../db/pgbouncer.js';
import type { SessionOptions } from '../db/session.js';
import { envelope, renderJson } from '../render/json.js';
import { addConnectionOptions, type CommandContext, type ConnectionCliOptions, sessionOptions, targetFrom, withReadProgress } from './context.js';

/**
 * "Is it the pooler?" Reads PgBouncer's admin console (SHOW POOLS, DATABASES, USERS, CONFIG,
 * CLIENTS, SERVERS) and judges its pools. Never prints, never exits.
 */
export async function runPgBouncer(target: Target, opts: SessionOptions): Promise<PgBouncerReport> {
  const facts = await readConsole(target, opts);
  return pgbouncerReport(facts, describeTarget(target), consoleConninfo(target));
}

/** The console of the PgBouncer the options point at: its admin database is always `pgbouncer`. */
export function consoleTarget(t: Target): Target {
  return { ...t, dbname: 'pgbouncer' };
}

export function poolsCommand(program: Command, ctx: CommandContext): void {
  addConnectionOptions(
    program
      .command('pools')
      .description("PgBouncer's pools: clients active and waiting, server connections, maxwait, pool sizes and limits (its admin console, -d pgbouncer)")
      .addHelpText('after', '\nExample:\n  dbdoctor pools -h pgbouncer1 -p 6432 -U admin\n'),
  )
    .option('--json', 'one JSON document on stdout')
    .action(async (opts: ConnectionCliOptions) => {
      ctx.json = Boolean(opts.json);
      const target = consoleTarget(targetFrom(opts, ctx));
      const report = await withReadProgress(ctx, target, "PgBouncer's pools", () => runPgBouncer(target, sessionOptions(opts, ctx)));
      if (opts.json) ctx.output.out(renderJson(envelope('pgbouncer', report, ctx.version)));
      else {
        const { renderPgBouncer } = await import('../render/pgbouncer.js');
        ctx.output.out(renderPgBouncer(report, ctx.output.style));
      }
      ctx.exitCode = report.exit_code;
    });
}
