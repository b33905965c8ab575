/**
 * `dbdoctor exporter`: serves the diagnosis to Prometheus. `/metrics` diagnoses every configured
 * target; `/probe?target=<name>` one of them (the multi-target pattern of blackbox_exporter and
 * postgres_exporter); `/healthz` says it is up. Targets come only from its own configuration, by
 * name: a scrape can never make it connect anywhere else. Each scrape has a timeout, and at most
 * one diagnosis per target is in flight (a second scrape meanwhile shares it). Logs one line per
 * request on stderr; SIGTERM (or Ctrl-C) closes it cleanly.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Command } from 'commander';
import { plural } from '../core/count.js';
import { DbdoctorError, UsageError } from '../core/errors.js';
import { type FleetEntry, mapConcurrent } from '../core/fleet.js';
import { parseDuration } from '../core/duration.js';
import { resolveThresholds, type Thresholds } from '../core/thresholds.js';
import { nowMs } from '../db/clock.js';
import { exposition } from '../render/exposition.js';
import type { CommandContext } from './context.js';
import { DEFAULT_CONCURRENCY, diagnoseOne, failedReport, type FleetTarget, fleetTargets, parseConcurrency } from './fleet.js';
import { loadConfigFile } from './diagnose.js';

interface ExporterCliOptions {
  listen?: string;
  targets?: string;
  service?: string;
  username?: string;
  connectTimeout?: string;
  scrapeTimeout?: string;
  concurrency?: string;
  config?: string;
}

/** host:port, [v6]:port: where to listen (loopback by default). */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port < 1 || port > 65535) throw new UsageError(`invalid --listen ${JSON.stringify(value)}`, 'host:port, e.g. --listen 127.0.0.1:9187 (or [::1]:9187)');
  return { host: (m[1] ?? m[2])!, port };
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

const PROMETHEUS_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
const OPENMETRICS_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

export function exporterCommand(program: Command, ctx: CommandContext): void {
  program
    .command('exporter')
    .description('serve the diagnosis to Prometheus: /metrics (every target), /probe?target=<name>, /healthz')
    .option('--listen <host:port>', 'where to listen (default 127.0.0.1:9187)')
    .option('--targets <file>', 'the targets (one a line: a URL, a conninfo string or service=name; @name first to name it)')
    .option('--service <names>', 'or services from pg_service.conf, comma-separated')
    .option('-U, --username <user>', 'role to connect as, for every target (PGUSER)')
    .option('--connect-timeout <duration>', 'per target (default 5s)')
    .option('--scrape-timeout <duration>', 'give up on a target after this long in one scrape (default 10s)')
    .option('--concurrency <n>', 'targets diagnosed at once on /metrics (default 16)')
    .option('--config <file>', 'thresholds, as diagnose reads them')
    .action(async (opts: ExporterCliOptions) => {
      const listen = parseListen(opts.listen ?? '127.0.0.1:9187');
      if ((opts.targets === undefined) === (opts.service === undefined)) throw new UsageError('the exporter needs its targets: --targets <file> or --service a,b,c (one of them)', 'targets come only from its own configuration; a scrape names one of them');
      const scrapeMs = parseDuration(opts.scrapeTimeout ?? '10s', '--scrape-timeout');
      const concurrency = parseConcurrency(opts.concurrency ?? String(DEFAULT_CONCURRENCY));
      const targets = fleetTargets(opts.targets !== undefined ? { file: opts.targets } : { services: opts.service ?? '' }, { username: opts.username, connectTimeout: opts.connectTimeout }, ctx.env);
      const thresholds: Thresholds = resolveThresholds({ config: loadConfigFile(opts.config, ctx.env), environment: ctx.env.DBDOCTOR_ENV || null, flags: {} });
      const byName = new Map(targets.map((t) => [t.name, t]));
      const inFlight = new Map<string, Promise<FleetEntry>>();
      const session = { statementTimeoutMs: Math.max(100, Math.min(15_000, scrapeMs - 500)) };

      /** One diagnosis per target at a time; past the scrape timeout, the target is reported down (the run goes on, for the next scrape). */
      const diagnoseWithin = (t: FleetTarget): Promise<FleetEntry> => {
        let run = inFlight.get(t.name);
        if (!run) {
          run = diagnoseOne(t, session, thresholds).finally(() => inFlight.delete(t.name));
          inFlight.set(t.name, run);
        }
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<FleetEntry>((resolve) => {
          timer = setTimeout(() => {
            const err = new DbdoctorError(`no diagnosis within the scrape timeout (${scrapeMs} ms)`, { exitCode: 3, hint: 'raise --scrape-timeout, or look at the target', cause: 'scrape_timeout' });
            resolve({ name: t.name, ms: scrapeMs, report: failedReport(t.target, err, thresholds, scrapeMs) });
          }, scrapeMs);
        });
        return Promise.race([run, late]).finally(() => clearTimeout(timer));
      };

      const handle = async (req: IncomingMessage, res: ServerResponse): Promise<number> => {
        const url = new URL(req.url ?? '/', 'http://exporter');
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          send(res, 405, 'text/plain', 'only GET\n');
          return 405;
        }
        const format = /application\/openmetrics-text/.test(req.headers.accept ?? '') ? 'openmetrics' : 'prometheus';
        const type = format === 'openmetrics' ? OPENMETRICS_TYPE : PROMETHEUS_TYPE;
        if (url.pathname === '/healthz') {
          send(res, 200, 'text/plain', 'ok\n');
          return 200;
        }
        if (url.pathname === '/metrics') {
          const entries = await mapConcurrent(targets, concurrency, diagnoseWithin);
          send(res, 200, type, exposition(entries, format));
          return 200;
        }
        if (url.pathname === '/probe') {
          const name = url.searchParams.get('target');
          const t = name === null ? undefined : byName.get(name);
          // only a configured target, by its name: never an address from the scrape
          if (!t) {
            send(res, 400, 'text/plain', `unknown target: ${name === null ? '(none given)' : 'not in the configuration'}\n`);
            return 400;
          }
          send(res, 200, type, exposition([await diagnoseWithin(t)], format));
          return 200;
        }
        send(res, 404, 'text/plain', 'not found: /metrics, /probe?target=<name>, /healthz\n');
        return 404;
      };

      const server = createServer((req, res) => {
        const started = nowMs();
        handle(req, res)
          .catch((err: unknown) => {
            if (!res.headersSent) send(res, 500, 'text/plain', 'internal error\n');
            ctx.output.err(`exporter: ${err instanceof Error ? err.message : String(err)}`);
            return 500;
          })
          .then((status) => ctx.output.err(`exporter: ${req.method} ${(req.url ?? '').slice(0, 200)} ${status} ${Math.round(nowMs() - started)}ms`));
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err: NodeJS.ErrnoException) => reject(new UsageError(`cannot listen on ${listen.host}:${listen.port}: ${err.code ?? err.message}`, 'choose another --listen address or port')));
        server.listen(listen.port, listen.host, () => resolve());
      });
      ctx.output.err(`exporter: listening on http://${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port} with ${plural(targets.length, 'target')}: ${targets.map((t) => t.name).join(', ')}`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGTERM', stop);
        ctx.signal.addEventListener('abort', stop, { once: true });
      });
      ctx.output.err('exporter: stopping');
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      // a clean stop is not an interruption
      ctx.exitCode = 0;
    });
}
