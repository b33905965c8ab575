import type { Command } from 'commander';
import { requireValues } from '../core/connections.js';
import { diagnose } from '../core/diagnose.js';
import { ExitCode } from '../core/exit-codes.js';
import { maskFacts } from '../core/snapshot.js';
import { resolveThresholds } from '../core/thresholds.js';
import { gatherFacts } from '../db/diagnose.js';
import { envelope, renderJson } from '../render/json.js';
import { addConnectionOptions, type CommandContext, type ConnectionCliOptions, refuseConsole, sessionOptions, targetFrom, withReadProgress } from './context.js';
import { loadConfigFile } from './diagnose.js';

interface SnapshotCliOptions extends ConnectionCliOptions {
  config?: string;
  environment?: string;
}

/**
 * `dbdoctor snapshot > incident.json`: everything diagnose reads (server facts, limits, the
 * activity with lock waiters and prepared transactions, settings with their per-role/database
 * overrides, the statements), gathered exactly as diagnose gathers it over one connection, other
 * clients' secrets masked, in one `dbdoctor.snapshot` document on stdout
 * (schema/snapshot.schema.json). `diagnose --from incident.json` then gives the findings the live
 * run gave. A server that cannot be read is recorded as such (the document says why) and the exit
 * code is that failure's; otherwise 0: a snapshot judges nothing.
 */
export function snapshotCommand(program: Command, ctx: CommandContext): void {
  addConnectionOptions(
    program
      .command('snapshot')
      .description('keep the evidence: everything diagnose reads, in one JSON document (read it back with --from)')
      .addHelpText(
        'after',
        `
Examples:
  dbdoctor snapshot -h db1 -U monitor > incident.json
  dbdoctor diagnose --from incident.json
  dbdoctor locks --from incident.json
`,
      ),
  )
    .option('--json', 'the output is always one JSON document; accepted for symmetry with the other commands')
    .option('--config <file>', "JSON file with thresholds; the statements' read uses top_statements and seq_scan_rows (default ./dbdoctor.json, then $XDG_CONFIG_HOME/dbdoctor/config.json)")
    .option('--environment <name>', 'use the thresholds of this environment in the config file (DBDOCTOR_ENV)')
    .action(async (opts: SnapshotCliOptions) => {
      // a failure is a JSON document too only when asked for (the snapshot itself is always JSON)
      ctx.json = Boolean(opts.json);
      if (opts.environment !== undefined) requireValues('--environment', [opts.environment]);
      if (opts.config !== undefined) requireValues('--config', [opts.config]);
      const environment = opts.environment ?? (ctx.env.DBDOCTOR_ENV || undefined) ?? null;
      const thresholds = resolveThresholds({ config: loadConfigFile(opts.config, ctx.env), environment, flags: {} });
      const target = targetFrom(opts, ctx);
      refuseConsole(target, 'snapshot');
      const session = sessionOptions(opts, ctx);
      const facts = await withReadProgress(ctx, target, 'activity, locks, settings and statements', () => gatherFacts(target, session, { thresholds }));
      ctx.output.out(renderJson(envelope('snapshot', maskFacts(facts), ctx.version)));
      ctx.exitCode = facts.connect.ok && !facts.gather_error ? ExitCode.OK : diagnose(facts, thresholds).exit_code;
    });
}
