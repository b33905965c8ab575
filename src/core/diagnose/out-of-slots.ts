/**
 * runbooks/out-of-slots.md: are the connection slots nearly used up (`capacity`), are roles or
 * databases near their CONNECTION LIMIT (`connection-limit`), and who holds the connections
 * (`who-holds`). The capacity finding is written last, once the other rooms have named the causes.
 */
import { isListener, type SessionRow, stateOf } from '../activity.js';
import { type Capacity, capacityOf, capacitySeverity, nearLimits, worst } from '../capacity.js';
import { bucketSessions, clientOf, countsByName } from '../connections.js';
import type { Severity } from '../exit-codes.js';
import { database, fixedStep, type NextStep, role, statementStep } from '../printed.js';
import { appLabel, type Context, distinct, emptyEvidence, finding, MAX_PIDS, type NodeResult, pathStep, plural, RANK, sharePct, slotsInUse } from './shared.js';
import type { Finding, HolderRow } from './types.js';

export const NODES = ['capacity', 'connection-limit', 'who-holds'] as const;

export interface CapacityResult extends NodeResult {
  cap: Capacity;
  severity: Severity;
}

/** capacity: are the slots ordinary roles may use nearly used up? (Its finding comes last: capacityFinding.) */
export function capacity(c: Pick<Context, 't' | 'server' | 'snap'>): CapacityResult {
  const { t, server, snap } = c;
  const cap = capacityOf({ max_connections: server.max_connections, superuser_reserved: server.superuser_reserved, reserved: server.reserved, client_backends: slotsInUse(snap) });
  const severity = capacitySeverity(cap, { warnPct: t.capacity_warn_pct, critPct: t.capacity_crit_pct });
  return {
    cap,
    severity,
    findings: [],
    path: [pathStep('capacity', 'are the connection slots nearly used up?', severity, `${cap.client_backends} of ${cap.ordinary_slots} ordinary slots in use (${cap.used_pct}%), headroom ${cap.headroom}`)],
  };
}

/** connection-limit: are roles or databases near their CONNECTION LIMIT? */
export function connectionLimit(c: Context): NodeResult {
  const { facts, t } = c;
  const near = nearLimits(facts.limits, { warnPct: t.capacity_warn_pct, critPct: t.capacity_crit_pct });
  const question = 'are roles or databases near their CONNECTION LIMIT?';
  if (!near.length) return { findings: [], path: [pathStep('connection-limit', question, 'no', `${plural(facts.limits.length, 'limit')} set, none near`)] };
  const ev = emptyEvidence();
  ev.facts = near.map((l) => `${l.kind} ${l.name}: ${l.connections} of its CONNECTION LIMIT ${l.conn_limit} (${l.used_pct}%)`);
  ev.users = near.filter((l) => l.kind === 'role').map((l) => l.name);
  ev.databases = near.filter((l) => l.kind === 'database').map((l) => l.name);
  const l0 = near[0]!;
  const f = finding(
    'out-of-slots',
    'connection-limit',
    worst(...near.map((l) => l.severity)),
    `${l0.kind} ${l0.name} uses ${l0.connections} of its CONNECTION LIMIT ${l0.conn_limit}${near.length > 1 ? `; ${near.length - 1} more near their limit` : ''}`,
    ev,
    'the per-role or per-database limit is lower than the pools configured for it, or that role leaks connections; new connections of that role or database fail with "too many connections for ..."',
    [
      fixedStep('see who holds them', 'connections', [['--by', l0.kind === 'role' ? 'user,app' : 'db,app']]),
      statementStep(
        'raise the limit if the pools need it',
        [`ALTER ${l0.kind === 'role' ? 'ROLE' : 'DATABASE'} `, l0.kind === 'role' ? role(l0.name, l0.oid ?? null) : database(l0.name, l0.oid ?? null), ` CONNECTION LIMIT ${Math.max(l0.conn_limit * 2, l0.conn_limit + 10)};`],
        'raise its CONNECTION LIMIT',
      ),
    ],
    ev.facts[0],
  );
  return { findings: [f], path: [pathStep('connection-limit', question, 'yes', ev.facts.join('; '))] };
}

export interface WhoHoldsResult extends NodeResult {
  holders: HolderRow[];
}

/** One application's sessions as a holder: by state, how many LISTEN, its first five clients; one pass. */
function holding(application: string, rows: SessionRow[]): HolderRow {
  const states = new Map<string, number>();
  const clients = new Set<string>();
  let listeners = 0;
  for (const r of rows) {
    const state = stateOf(r);
    states.set(state, (states.get(state) ?? 0) + 1);
    if (isListener(r)) listeners++;
    const client = clients.size < 5 ? clientOf(r) : null;
    if (client !== null) clients.add(client);
  }
  return { application, count: rows.length, states: countsByName(states), listeners, clients: [...clients] };
}

/** who-holds: the largest holders by application, client and user, with their states. */
export function whoHolds(c: Context): WhoHoldsResult {
  const { sessions } = c;
  const byApp = bucketSessions(sessions, ['app']);
  const rowsOf = new Map(byApp.map((b) => [b.keys.app ?? '', b.rows]));
  const holders: HolderRow[] = byApp.map(({ keys, rows }) => holding(keys.app ?? '', rows));
  const top = holders.slice(0, 5);
  const ev = emptyEvidence();
  ev.sessions = sessions.length;
  ev.applications = top.map((h) => h.application);
  ev.facts = top.map((h) => `${appLabel(h.application)}: ${h.count} (${Object.entries(h.states).map(([s, n]) => `${s} ${n}`).join(', ')})${h.listeners ? `, ${h.listeners} of them LISTEN (idle by design)` : ''}`);
  for (const b of bucketSessions(sessions, ['client']).slice(0, 3)) ev.facts.push(`client ${b.keys.client ?? 'hidden'}: ${b.rows.length}`);
  for (const b of bucketSessions(sessions, ['user']).slice(0, 3)) ev.facts.push(`user ${b.keys.user ?? '?'}: ${b.rows.length}`);
  const rowsFor = (app: string): SessionRow[] => rowsOf.get(app) ?? [];
  ev.groups = top.map((h) => ({
    label: appLabel(h.application),
    application: h.application,
    client: h.clients.length === 1 ? h.clients[0]! : null,
    database: null,
    users: distinct(rowsFor(h.application), (r) => r.usename),
    state: null,
    wait_event: null,
    count: h.count,
    pids: rowsFor(h.application).map((r) => r.pid).slice(0, MAX_PIDS),
    oldest_ms: null,
    statement: null,
    severity: 'info',
  }));
  const h0 = top[0];
  const title = h0 ? `largest holders: ${top.slice(0, 3).map((h) => `${appLabel(h.application)} ${h.count}`).join(', ')} of ${sessions.length} client sessions` : 'no client sessions besides dbdoctor';
  const f = finding(
    'out-of-slots',
    'who-holds',
    'info',
    title,
    ev,
    'the shape of who holds the slots points to the branch: idle in transaction (a leak), active on ClientRead (unread results), the same statement everywhere (slow work), Lock waits (blocking), many idle (a pool too large)',
    [fixedStep('see the groups by application and state', 'connections', [['--by', 'app,state']]), fixedStep('and by client address', 'connections', [['--by', 'app,client']])],
  );
  return { holders, findings: [f], path: [pathStep('who-holds', 'who holds the connections?', h0 ? 'found' : 'none', title)] };
}

/** The findings that can explain where the slots went, as the capacity finding names them. */
const CAUSES = new Set(['idle-in-transaction', 'unread-results', 'idle-pool', 'blocking', 'same-statement', 'long-queries']);

/**
 * The capacity finding, written last: by then the causes are known. `cleanups` are the clean-ups
 * the leak rooms recommend, offered again here when the slots run short.
 */
export function capacityFinding(c: Pick<Context, 'server'>, r: CapacityResult, holders: HolderRow[], earlier: Finding[], cleanups: NextStep[]): Finding {
  const { cap, severity } = r;
  const ev = emptyEvidence();
  ev.sessions = cap.client_backends;
  ev.facts = [
    `${cap.client_backends} client backends (dbdoctor's own included) of ${cap.ordinary_slots} slots ordinary roles may use (${cap.used_pct}%)`,
    `max_connections ${cap.max_connections}, superuser_reserved_connections ${cap.superuser_reserved}${c.server.server_version_num >= 160000 ? `, reserved_connections ${cap.reserved}` : ''}`,
    `headroom ${cap.headroom} (${cap.headroom_pct}%)`,
  ];
  const h0 = holders[0];
  if (h0) ev.facts.push(`largest holder: ${appLabel(h0.application)} with ${h0.count} (${sharePct(h0.count, cap.ordinary_slots)}%)`);
  ev.applications = holders.slice(0, 5).map((h) => h.application);
  const causes = earlier.filter((f) => CAUSES.has(f.id) && RANK[f.severity] >= RANK.warning);
  const cause =
    severity === 'ok'
      ? 'enough headroom'
      : causes.length
        ? `the slots are held by: ${causes.map((f) => f.id).join(', ')} (see those findings); raising max_connections would only delay the next exhaustion`
        : h0
          ? `${appLabel(h0.application)} holds the most; a traffic spike, pools sized larger than the server, or a leak that has not aged past the thresholds yet`
          : 'superuser or reserved-slot sessions';
  return finding(
    'out-of-slots',
    'capacity',
    severity,
    `${cap.client_backends} of ${cap.ordinary_slots} ordinary connection slots in use (${cap.used_pct}%), headroom ${cap.headroom}`,
    ev,
    cause,
    [fixedStep('see who holds the slots', 'connections', [['--by', 'app,state']]), ...(severity === 'ok' ? [] : cleanups.slice(0, 3))],
    `${cap.client_backends}/${cap.ordinary_slots} slots used (${cap.used_pct}%)`,
  );
}
