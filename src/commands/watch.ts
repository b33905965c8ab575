import type { Command } from 'commander';
import { worst } from '../core/capacity.js';
import { diagnose } from '../core/diagnose.js';
import { DEFAULT_TREND_OPTIONS, type TrendOptions } from '../core/diagnose/trends.js';
import { MAX_TIMEOUT_MS, parseDuration } from '../core/duration.js';
import { UsageError } from '../core/errors.js';
import { exitCodeForSeverity, type Severity } from '../core/exit-codes.js';
import { maskFacts } from '../core/snapshot.js';
import { resolveThresholds } from '../core/thresholds.js';
import { deltas, eventsBetween, identities, nextInterval, Ring, summarize, trends, type WatchSample } from '../core/watch.js';
import { nowMs } from '../db/clock.js';
import { withSession } from '../db/session.js';
import { readSample } from '../db/watch.js';
import { envelope, renderJsonLine } from '../render/json.js';
import { addConnectionOptions, type CommandContext, type ConnectionCliOptions, refuseConsole, sessionOptions, targetFrom } from './context.js';

interface WatchCliOptions extends ConnectionCliOptions {
  interval?: string;
  count?: string;
  for?: string;
  trendWindow?: string;
}

/** The samples kept (each a small summary): an hour at 2s. */
export const RING_SAMPLES = 1800;

function positiveInt(value: string | undefined, flag: string, min: number, max: number, example: string): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\s*\d{1,9}\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`invalid ${flag} ${JSON.stringify(value)}`, `a whole number from ${min} to ${max}, e.g. ${flag} ${example}`);
  return n;
}

export interface WatchPlan {
  intervalMs: number;
  count: number | undefined;
  forMs: number | undefined;
  trend: TrendOptions;
}

/** Every flag checked before connecting: a long-running command never starts with a bad value. */
export function watchPlan(opts: WatchCliOptions): WatchPlan {
  const intervalMs = opts.interval === undefined ? 2000 : parseDuration(opts.interval, '--interval');
  if (intervalMs < 200 || intervalMs > 3_600_000) throw new UsageError(`invalid --interval ${JSON.stringify(opts.interval)}`, 'from 200ms to 1h, e.g. --interval 2s');
  const forMs = opts.for === undefined ? undefined : parseDuration(opts.for, '--for');
  if (forMs !== undefined && (forMs <= 0 || forMs > MAX_TIMEOUT_MS)) throw new UsageError(`invalid --for ${JSON.stringify(opts.for)}`, 'a duration up to 24d, e.g. --for 10m');
  const count = positiveInt(opts.count, '--count', 1, 1_000_000, '30');
  const window = positiveInt(opts.trendWindow, '--trend-window', 3, RING_SAMPLES, '6') ?? DEFAULT_TREND_OPTIONS.window;
  return { intervalMs, count, forMs, trend: { ...DEFAULT_TREND_OPTIONS, window } };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * `dbdoctor watch`: samples the server every --interval over ONE connection held for the whole
 * watch, and says how the incident moves. With --json (or without a terminal): one
 * `dbdoctor.watch` document per sample, one per line (a recording). Stops after --count samples or
 * --for a duration (or Ctrl-C); the exit code is the worst verdict seen.
 */
export function watchCommand(program: Command, ctx: CommandContext): void {
  addConnectionOptions(
    program
      .command('watch')
      .description('how is it moving: samples over one connection, growth per application, forecasts of slot exhaustion, churn; JSON lines without a terminal')
      .addHelpText(
        'after',
        `
Examples:
  dbdoctor watch -h db1 -U monitor
  dbdoctor watch --for 10m --json > incident.jsonl     record an incident
  dbdoctor diagnose --from incident.jsonl              the diagnosis, with the trends
`,
      ),
  )
    .option('--json', 'one JSON document per sample on stdout, one per line (the default without a terminal)')
    .option('--interval <duration>', 'time between samples (default 2s; lengthened when a sample takes more than 10% of it)')
    .option('--count <n>', 'stop after this many samples')
    .option('--for <duration>', 'stop after this long (e.g. 10m)')
    .option('--trend-window <n>', `samples a trend is fitted over, at least 3 (default ${DEFAULT_TREND_OPTIONS.window})`)
    .action(async (opts: WatchCliOptions) => {
      ctx.json = Boolean(opts.json);
      const plan = watchPlan(opts);
      const thresholds = resolveThresholds({ config: null, environment: null, flags: {} });
      const target = targetFrom(opts, ctx);
      refuseConsole(target, 'watch');
      const session = sessionOptions(opts, ctx);
      const lines = opts.json || !ctx.output.stdoutIsTTY;
      const started = nowMs();
      let worstSeen: Severity = 'ok';
      await withSession(target, session, async (s) => {
        const ring = new Ring<WatchSample>(RING_SAMPLES);
        let prev: WatchSample | null = null;
        let prevIds: Set<string> | null = null;
        let interval = plan.intervalMs;
        let backedOff = false;
        for (let seq = 1; !ctx.signal.aborted; seq++) {
          const at = Date.now();
          const read = await readSample(s);
          const report = diagnose(read.facts, thresholds);
          const sample = summarize(read.facts, report, prevIds, read.stats, { seq, at_ms: at, server_ms: read.ms, interval_ms: interval, backed_off: backedOff });
          ({ interval_ms: interval, backed_off: backedOff } = nextInterval(plan.intervalMs, read.ms));
          ring.push(sample);
          const trendNow = trends(ring.all(), plan.trend);
          const events = eventsBetween(prev, sample);
          worstSeen = worst(worstSeen, sample.verdict, ...trendNow.map((f) => f.severity));
          const last = (plan.count !== undefined && seq >= plan.count) || (plan.forMs !== undefined && nowMs() + interval - started > plan.forMs);
          if (lines) {
            const withFacts = seq === 1 || events.length > 0 || last;
            const doc = {
              sample,
              deltas: deltas(prev, sample),
              events,
              trends: trendNow,
              worst_verdict: worstSeen,
              trend_window: plan.trend.window,
              facts: withFacts ? maskFacts(read.facts) : null,
            };
            ctx.output.out(renderJsonLine(envelope('watch', doc, ctx.version)));
          } else {
            const { renderWatchSample } = await import('../render/watch.js');
            ctx.output.out(renderWatchSample(sample, events, trendNow, ctx.output.style));
          }
          prev = sample;
          prevIds = identities(read.facts);
          if (last) break;
          await sleep(interval, ctx.signal);
        }
      });
      ctx.exitCode = exitCodeForSeverity(worstSeen);
    });
}
