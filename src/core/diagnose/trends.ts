/**
 * The trends room (runbooks/trends.md): what no single snapshot can show, decided over the samples
 * of a `watch` window or recording (src/core/watch.ts summarizes each sample). PURE.
 * - growth: an application's sessions (idle in transaction, ClientRead, or all) keep rising: a
 *   least-squares fit over at least `window` samples, with a rate and a fit good enough to trust;
 * - exhaustion-forecast: when the client sessions as a whole rise that way, when the ordinary
 *   slots run out at that rate, and which application rises most;
 * - churn: new sessions per second (backend_start; and on 14+ pg_stat_database's `sessions`
 *   deltas, which see the short-lived ones too), and clients that die without closing
 *   (`sessions_abandoned`, `sessions_fatal`, `sessions_killed`).
 */
import { formatDuration } from '../duration.js';
import type { Severity } from '../exit-codes.js';
import { fixedStep, type NextStep } from '../printed.js';
import { appLabel, emptyEvidence, finding, listStep, plural, runbookStep } from './shared.js';
import type { Finding, PathStep } from './types.js';

export const NODES = ['growth', 'exhaustion-forecast', 'churn'] as const;

export interface TrendOptions {
  /** Samples a fit needs (and looks back over). */
  window: number;
  /** A group rising slower than this (sessions per minute) is not growth. */
  minPerMin: number;
  /** The fit's R² at least this. */
  minR2: number;
  /** New sessions per second from which churn is a finding. */
  churnPerS: number;
}

export const DEFAULT_TREND_OPTIONS: TrendOptions = { window: 6, minPerMin: 2, minR2: 0.7, churnPerS: 5 };

/** The per-sample numbers the trends read (a subset of src/core/watch.ts's WatchSample). */
export interface TrendSample {
  at_ms: number;
  client_sessions: number;
  ordinary_slots: number;
  by_app: Array<{ app: string; total: number; idle_in_transaction: number; client_read: number; new_sessions: number; pids_iit: number[] }>;
  new_sessions: number | null;
  session_stats: { sessions: number; abandoned: number; fatal: number; killed: number } | null;
}

export interface Fit {
  /** Per minute. */
  slope: number;
  r2: number;
  n: number;
}

/** Least squares over (minutes, value). A flat series has r2 0 (nothing to explain). */
export function leastSquares(points: Array<[number, number]>): Fit {
  const n = points.length;
  if (n < 2) return { slope: 0, r2: 0, n };
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
    syy += (y - my) ** 2;
  }
  if (sxx === 0 || syy === 0) return { slope: 0, r2: 0, n };
  return { slope: sxy / sxx, r2: (sxy * sxy) / (sxx * syy), n };
}

const METRICS = [
  ['idle_in_transaction', 'idle in transaction'],
  ['client_read', 'active on ClientRead'],
  ['total', 'sessions'],
] as const;

type Metric = (typeof METRICS)[number][0];

export interface Growth {
  app: string;
  metric: Metric;
  what: string;
  fit: Fit;
  from: number;
  to: number;
  pids: number[];
}

const rate = (perMin: number) => `${perMin >= 0 ? '+' : ''}${perMin >= 10 ? Math.round(perMin) : Math.round(perMin * 10) / 10}/min`;

/** The growing groups over the last `window` samples, the steepest first; one per application (its most specific metric). */
export function growthOf(samples: TrendSample[], o: TrendOptions): Growth[] {
  const w = samples.slice(-o.window);
  if (w.length < o.window || w.length < 3) return [];
  const t0 = w[0]!.at_ms;
  const apps = new Set(w.flatMap((s) => s.by_app.map((a) => a.app)));
  // Each sample's applications by name, once: looked up per application and metric.
  const byApp = w.map((s) => {
    const m = new Map<string, (typeof s.by_app)[number]>();
    for (const a of s.by_app) if (!m.has(a.app)) m.set(a.app, a);
    return m;
  });
  const out: Growth[] = [];
  for (const app of apps) {
    for (const [metric, what] of METRICS) {
      const ys = byApp.map((m) => m.get(app)?.[metric] ?? 0);
      const f = leastSquares(w.map((s, i) => [(s.at_ms - t0) / 60_000, ys[i]!]));
      if (f.slope >= o.minPerMin && f.r2 >= o.minR2 && ys[ys.length - 1]! - ys[0]! >= 2) {
        const last = byApp[byApp.length - 1]!.get(app);
        out.push({ app, metric, what, fit: f, from: ys[0]!, to: ys[ys.length - 1]!, pids: metric === 'idle_in_transaction' ? (last?.pids_iit ?? []) : [] });
        break;
      }
    }
  }
  return out.sort((a, b) => b.fit.slope - a.fit.slope);
}

function span(w: TrendSample[]): number {
  return w.length < 2 ? 0 : (w[w.length - 1]!.at_ms - w[0]!.at_ms) / 1000;
}

/** All the trend findings over these samples. */
export function trendFindings(samples: TrendSample[], o: TrendOptions = DEFAULT_TREND_OPTIONS): Finding[] {
  const out: Finding[] = [];
  const growth = growthOf(samples, o);
  for (const g of growth) {
    const ev = emptyEvidence();
    ev.sessions = g.to;
    ev.pids = [...g.pids].sort((a, b) => a - b).slice(0, 200);
    ev.applications = [g.app];
    ev.facts = [`${g.what} of ${appLabel(g.app)}: ${g.from} -> ${g.to} over ${g.fit.n} samples, ${rate(g.fit.slope)} (least-squares fit, R² ${g.fit.r2.toFixed(2)})`];
    const next: NextStep[] = [listStep(`list ${appLabel(g.app)}'s sessions`, [], g.app), runbookStep('growth')];
    out.push(
      finding('trends', 'growth', 'warning', `${appLabel(g.app)}: ${g.what} keep rising, ${rate(g.fit.slope)} (${g.from} -> ${g.to} over ${g.fit.n} samples)`, ev, g.metric === 'idle_in_transaction' ? 'sessions opened a transaction and are not committing or rolling back (a missing COMMIT/ROLLBACK or release), one more each time the code path runs' : g.metric === 'client_read' ? 'results begun and never read to the end (an unclosed cursor or stream), one more each time' : "the application's pool keeps opening connections and not returning them", next, `${g.app} growing ${rate(g.fit.slope)}`),
    );
  }
  const w = samples.slice(-o.window);
  if (w.length >= o.window && w.length >= 3) {
    const t0 = w[0]!.at_ms;
    const f = leastSquares(w.map((s) => [(s.at_ms - t0) / 60_000, s.client_sessions]));
    const last = w[w.length - 1]!;
    const free = last.ordinary_slots - last.client_sessions;
    if (f.slope >= o.minPerMin && f.r2 >= o.minR2 && free > 0) {
      const etaMs = (free / f.slope) * 60_000;
      const mostly = growth[0]?.app ?? null;
      const severity: Severity = etaMs <= 10 * 60_000 ? 'critical' : 'warning';
      const ev = emptyEvidence();
      ev.sessions = last.client_sessions;
      ev.applications = growth.map((g) => g.app);
      ev.facts = [`${last.client_sessions} of ${last.ordinary_slots} ordinary slots in use, ${plural(free, 'free slot')}`, `client sessions ${rate(f.slope)} over ${f.n} samples (R² ${f.r2.toFixed(2)})`];
      out.push(
        finding(
          'trends',
          'exhaustion-forecast',
          severity,
          `ordinary slots exhausted in about ${formatDuration(etaMs)} at ${rate(f.slope)}${mostly ? `, mostly ${appLabel(mostly)}` : ''}`,
          ev,
          'if nothing changes, new connections will fail with "too many clients" (53300) at that time',
          [fixedStep('see who holds the connections', 'connections', []), runbookStep('exhaustion-forecast')],
          `slots exhausted in ~${formatDuration(etaMs)}`,
        ),
      );
    }
  }
  // churn: over the window (at least two samples)
  const cw = samples.slice(-Math.max(2, o.window));
  const secs = span(cw);
  if (cw.length >= 2 && secs > 0) {
    const seen = cw.slice(1).reduce((a, s) => a + (s.new_sessions ?? 0), 0);
    const first = cw[0]!.session_stats;
    const lastStats = cw[cw.length - 1]!.session_stats;
    const d = first && lastStats ? { sessions: lastStats.sessions - first.sessions, abandoned: lastStats.abandoned - first.abandoned, fatal: lastStats.fatal - first.fatal, killed: lastStats.killed - first.killed } : null;
    const perS = Math.max(seen, d?.sessions ?? 0) / secs;
    const dying = d ? d.abandoned + d.fatal + d.killed : 0;
    if (perS >= o.churnPerS || dying > 0) {
      const byApp = new Map<string, number>();
      for (const s of cw.slice(1)) for (const a of s.by_app) byApp.set(a.app, (byApp.get(a.app) ?? 0) + a.new_sessions);
      const apps = [...byApp].filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
      const ev = emptyEvidence();
      ev.applications = apps.map(([a]) => a).slice(0, 10);
      ev.facts = [
        `${Math.round(perS * 10) / 10} new sessions/s over ${Math.round(secs)} s (${seen} seen starting${d ? `; pg_stat_database: ${d.sessions} sessions` : ''})`,
        ...(d ? [`ended without closing: ${d.abandoned} abandoned, ${d.fatal} fatal, ${d.killed} killed`] : []),
        ...(apps.length ? [`new sessions by application: ${apps.slice(0, 5).map(([a, n]) => `${appLabel(a)} ${n}`).join(', ')}`] : []),
      ];
      const storm = perS >= o.churnPerS;
      out.push(
        finding(
          'trends',
          'churn',
          'warning',
          storm ? `connection churn: ${Math.round(perS * 10) / 10} new sessions/s${apps[0] ? `, mostly ${appLabel(apps[0][0])}` : ''}` : `clients dying without closing: ${d?.abandoned ?? 0} abandoned, ${d?.fatal ?? 0} fatal, ${d?.killed ?? 0} killed`,
          ev,
          storm ? 'a client connects per request instead of using a pool, or a pool keeps recycling its connections (each connection costs a fork and authentication)' : 'clients that go away without a Terminate message (crashes, timeouts, network drops), or sessions killed by an administrator',
          [fixedStep('see who connects', 'connections', ['--by', 'app,client']), runbookStep('churn')],
          storm ? `churn ${Math.round(perS)}/s` : 'sessions dying',
        ),
      );
    }
  }
  return out;
}

/** The trends as a node of diagnose's tree, for a recording's samples. */
export function trendsNode(samples: TrendSample[], o: TrendOptions): { findings: Finding[]; path: PathStep[] } {
  const findings = trendFindings(samples, o);
  const detail = findings.length ? findings.map((f) => f.summary).join('; ') : `nothing rising, forecast or churning over ${samples.length} samples (window ${o.window})`;
  return { findings, path: [{ node: 'growth', question: 'how did it move over the recording (growth, forecast, churn)?', branch: findings.length ? 'found' : 'none', detail }] };
}
