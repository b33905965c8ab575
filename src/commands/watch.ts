import type { Command } from 'commander';
import { worst } from '../core/capacity.js';
import { diagnose } from '../core/diagnose.js';
import { DEFAULT_TREND_OPTIONS, type TrendOptions } from '../core/diagnose/trends.js';
import { MAX_TIMEOUT_MS, parseDuration } from '../core/duration.js';
import { InterruptedError, UsageError } from '../core/errors.js';
import { ExitCode, exitCodeForSeverity, type Severity } from '../core/exit-codes.js';
import { maskFacts } from '../core/snapshot.js';
import { resolveThresholds } from '../core/thresholds.js';
import { connectionArgs } from '../core/guide.js';
import { describeTarget } from '../core/target.js';
import type { Thresholds } from '../core/thresholds.js';
import { deltas, eventsBetween, type HandOver, handOver as handOverOf, identities, nextInterval, Ring, summarize, trends, type WatchEvent, type WatchSample } from '../core/watch.js';
import type { Finding } from '../core/diagnose.js';
import type { ScreenState } from '../render/watch-screen.js';
import type { LiveScreen } from '../ui/watch-screen.js';
import { type Session, withSession } from '../db/session.js';
import { readFullFacts, readSample } from '../db/watch.js';
import { nowMs } from '../db/clock.js';
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
export function watchCommand(program: Command, ctx: CommandContext, factory: (ctx: CommandContext) => Command): void {
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
      const live = !opts.json && ctx.output.stdoutIsTTY && ctx.output.stdinIsTTY && ctx.output.frame !== undefined;
      const started = nowMs();
      const sampler = new Sampler(plan, thresholds);
      let handOver: HandOver | null = null;
      await withSession(target, session, async (s) => {
        if (live) {
          const r = await liveView(ctx, s, sampler, plan, thresholds, describeTarget(target));
          handOver = r.handOver;
          if (r.interrupted) ctx.exitCode = ExitCode.INTERRUPTED;
          return;
        }
        for (let seq = 1; !ctx.signal.aborted; seq++) {
          const { sample, read, events, trendNow } = await sampler.next(s, seq);
          const last = (plan.count !== undefined && seq >= plan.count) || (plan.forMs !== undefined && nowMs() + sampler.interval - started > plan.forMs);
          if (opts.json || !ctx.output.stdoutIsTTY) {
            const withFacts = seq === 1 || events.length > 0 || last;
            const doc = {
              sample,
              deltas: deltas(sampler.prevOf(sample), sample),
              events,
              trends: trendNow,
              trends_seen: [...sampler.trendsSeen.values()],
              worst_verdict: sampler.worstSeen,
              trend_window: plan.trend.window,
              facts: withFacts ? maskFacts(read.facts) : null,
            };
            ctx.output.out(renderJsonLine(envelope('watch', doc, ctx.version)));
          } else {
            const { renderWatchSample } = await import('../render/watch.js');
            ctx.output.out(renderWatchSample(sample, events, trendNow, ctx.output.style));
          }
          if (last) break;
          await sleep(sampler.interval, ctx.signal);
        }
      });
      if (ctx.exitCode !== ExitCode.INTERRUPTED) ctx.exitCode = exitCodeForSeverity(sampler.worstSeen);
      if (handOver) {
        // t: terminate's own guided flow (plan, checkbox, confirmation), unchanged, on the normal screen
        const { argv, command } = handOver as HandOver;
        ctx.output.out(ctx.output.style.bold(`$ ${command}`));
        const sub: CommandContext = { ...ctx, exitCode: ExitCode.OK, json: false };
        await factory(sub).parseAsync(['node', 'dbdoctor', ...argv, ...connectionArgs(target)]);
        ctx.exitCode = sub.exitCode;
      }
    });
}

/** The samples, their summaries, the trends and the back-off, shared by both views. */
class Sampler {
  readonly ring = new Ring<WatchSample>(RING_SAMPLES);
  private prev: WatchSample | null = null;
  private prevIds: Set<string> | null = null;
  private backedOff = false;
  interval: number;
  worstSeen: Severity = 'ok';
  readonly log: WatchEvent[] = [];
  trendNow: Finding[] = [];
  /** Every trend finding seen so far in this watch: its worst severity, its latest title, when first and last seen. */
  readonly trendsSeen = new Map<string, { id: string; severity: Severity; title: string; first_at: string; last_at: string }>();

  constructor(
    private readonly plan: WatchPlan,
    private readonly thresholds: Thresholds,
  ) {
    this.interval = plan.intervalMs;
  }

  prevOf(sample: WatchSample): WatchSample | null {
    const all = this.ring.all();
    const i = all.indexOf(sample);
    return i > 0 ? (all[i - 1] ?? null) : null;
  }

  async next(s: Session, seq: number) {
    const at = Date.now();
    const read = await readSample(s);
    const report = diagnose(read.facts, this.thresholds);
    const sample = summarize(read.facts, report, this.prevIds, read.stats, { seq, at_ms: at, server_ms: read.ms, interval_ms: this.interval, backed_off: this.backedOff });
    ({ interval_ms: this.interval, backed_off: this.backedOff } = nextInterval(this.plan.intervalMs, read.ms));
    // only the latest sample's pids are read (a growth finding's evidence): the older ones drop
    // theirs, so that an hour of samples of thousands of sessions stays small
    if (this.prev) for (const a of this.prev.by_app) a.pids_iit = [];
    this.ring.push(sample);
    this.trendNow = trends(this.ring.all(), this.plan.trend);
    const events = eventsBetween(this.prev, sample);
    this.log.push(...events);
    if (this.log.length > 200) this.log.splice(0, this.log.length - 200);
    this.worstSeen = worst(this.worstSeen, sample.verdict, ...this.trendNow.map((f) => f.severity));
    for (const f of this.trendNow) {
      const seen = this.trendsSeen.get(f.id);
      this.trendsSeen.set(f.id, { id: f.id, severity: seen ? worst(seen.severity, f.severity) : f.severity, title: f.title, first_at: seen?.first_at ?? sample.at, last_at: sample.at });
    }
    this.prev = sample;
    this.prevIds = identities(read.facts);
    return { sample, read, events, trendNow: this.trendNow };
  }
}

/** The full-screen view: samples every interval, keys between them; the terminal is always given back. */
async function liveView(ctx: CommandContext, s: Session, sampler: Sampler, plan: WatchPlan, thresholds: Thresholds, target: string): Promise<{ interrupted: boolean; handOver: HandOver | null }> {
  const { renderScreen, SORTS } = await import('../render/watch-screen.js');
  const { openLiveScreen } = await import('../ui/watch-screen.js');
  const state: ScreenState = { target, samples: [], trends: [], events: [], paused: false, sort: 'total', filter: null, typing: null, help: false, overlay: null, message: null, cols: 80, rows: 24, intervalMs: plan.intervalMs };
  let quit: 'q' | 'ctrl-c' | 'signal' | 't' | null = null;
  let wantDiagnose = false;
  let handOver: HandOver | null = null;
  let wake = new AbortController();
  let screen: LiveScreen | null = null;
  const draw = () => {
    if (!screen) return;
    const { cols, rows } = screen.size();
    Object.assign(state, { cols, rows, samples: sampler.ring.all(), trends: sampler.trendNow, events: sampler.log });
    screen.draw(renderScreen(state, ctx.output.style));
  };
  const poke = () => wake.abort();
  screen = openLiveScreen(ctx.output, {
    onResize: draw,
    onSignal: () => {
      quit = 'signal';
      poke();
    },
    onKey: (key) => {
      if (key === '\u0003') {
        quit = 'ctrl-c';
        return poke();
      }
      if (state.overlay || state.help) {
        state.overlay = null;
        state.help = false;
        return draw();
      }
      if (state.typing !== null) {
        if (key === '\r' || key === '\n') {
          state.filter = state.typing.trim() === '' ? null : state.typing;
          state.typing = null;
        } else if (key === '\u001b') state.typing = null;
        else if (key === '\u007f' || key === '\b') state.typing = state.typing.slice(0, -1);
        else if (key.length === 1 && key >= ' ' && state.typing.length < 60) state.typing += key;
        return draw();
      }
      state.message = null;
      if (key === 'q') {
        quit = 'q';
        return poke();
      }
      if (key === 'p') state.paused = !state.paused;
      else if (key === 's') state.sort = SORTS[(SORTS.indexOf(state.sort) + 1) % SORTS.length]!;
      else if (key === '/') state.typing = '';
      else if (key === '?') state.help = true;
      else if (key === 'd') {
        wantDiagnose = true;
        state.message = 'diagnosing...';
        poke();
      } else if (key === 't') {
        const all = sampler.ring.all();
        const next = handOverOf(all[all.length - 1], state.filter);
        if (next === null) state.message = 'nothing to hand over: no application with sessions idle in transaction (pick one with /)';
        else if (next === 'unshowable') state.message = "not handed over: that application's name cannot be shown exactly";
        else {
          handOver = next;
          quit = 't';
          return poke();
        }
      }
      draw();
    },
  });
  try {
    draw();
    const started = nowMs();
    for (let seq = 1; quit === null && !ctx.signal.aborted; ) {
      if (!state.paused) {
        await sampler.next(s, seq);
        seq++;
      }
      if (wantDiagnose) {
        wantDiagnose = false;
        const { renderDiagnose } = await import('../render/diagnose.js');
        const report = diagnose(await readFullFacts(s), thresholds);
        state.overlay = renderDiagnose(report, ctx.output.style).split('\n');
        state.message = null;
      }
      draw();
      if ((plan.count !== undefined && seq > plan.count) || (plan.forMs !== undefined && nowMs() - started > plan.forMs)) break;
      if (quit !== null) break;
      wake = new AbortController();
      await sleep(sampler.interval, AbortSignal.any([ctx.signal, wake.signal]));
    }
  } finally {
    screen.close();
    screen = null;
  }
  const q = quit as string | null;
  if (q === 'signal') throw new InterruptedError();
  return { interrupted: q === 'ctrl-c', handOver };
}
