/**
 * The activity snapshot: pg_stat_activity with ages on one clock reading, and who blocks whom for
 * the sessions waiting on a lock. Never the pg_locks self-join (quadratic). pg_locks
 * (pg_lock_status(), which builds every row of the lock table under the lock manager's partition
 * locks) is read with 'full' lock detail (`locks --detail`) whenever someone waits, and with
 * 'targeted' detail (`locks`, `diagnose`) only when a waiter waits for a type of lock whose relation
 * or mode its wait_event does not fix (a relation, a tuple, ...) or a queue is long
 * (LONG_QUEUE_PIDS); then who blocks whom comes from its rows (core/lock-queue.ts, linear in a
 * queue's length), otherwise from pg_blocking_pids(). PostgreSQL 14-18: query_id and
 * pg_locks.waitstart are 14+. One round trip (withPrepared, the prepared transactions ride along);
 * for every session, a second when the lock table is to be read (lockTableSql); autocommit, so
 * every call reads a fresh snapshot.
 */
import { type ActivitySnapshot, DERIVABLE_LOCK_TYPES, derivedWaitLock, type PreparedXact, type SessionRow } from '../../core/activity.js';
import { type LockHold, type LockWait, queueBlockers } from '../../core/lock-queue.js';
import { DbdoctorError } from '../../core/errors.js';
import type { Session } from '../session.js';
import { type Read, readOne } from './read.js';

export interface ActivityOptions {
  /** Read the prepared transactions too (pg_blocking_pids() names one as pid 0). */
  withPrepared?: boolean;
  /**
   * Also read, from pg_locks, the lock each waiter waits for: mode, relation, wait start (implies
   * withPrepared); see LockDetail. pg_lock_status() builds every row of the lock table before any
   * filter, under the lock manager's partition locks: at incident scale that was half of
   * `diagnose`'s statement (README, "Benchmark"), so it is read in a second round trip, only when
   * a wait needs it. Without it, who blocks whom still comes from pg_blocking_pids(), and the type
   * of lock waited for from wait_event.
   */
  lockDetail?: boolean | LockDetail;
  /** Cut query text to this many characters, server-side (default 2000). */
  queryChars?: number;
  /**
   * Leave out the columns only the session views show (query_id, client_port, backend_age_ms,
   * client_hostname): `diagnose` decides and prints without them, and each costs per row (an age
   * is float8 arithmetic, query_id a cast to text). They come back as null.
   */
  lean?: boolean;
  /**
   * Which sessions come back. 'all' (the default): every row of pg_stat_activity. 'blocking'
   * (implies at least 'targeted' lock detail): only what the blocking tree shows, that is the sessions waiting on a
   * lock, the sessions they wait for, the parallel workers of both, plus every hidden row (so the
   * partial-view count stays exact) and dbdoctor's own. At incident scale this is a third of the
   * rows and of the bytes (measured by `npm run bench`).
   */
  scope?: 'all' | 'blocking';
  /**
   * Read who blocks whom (default true). `connections` shows neither blockers nor waits, and
   * without lock detail each waiter's pg_blocking_pids() is the costly part of the statement in a
   * pile-up (every waiter ahead of each waiter: N^2/2 pids for one queue of N): false leaves
   * blocked_by null. Lock detail and the 'blocking' scope read them whatever this says.
   */
  blockers?: boolean;
}

/**
 * Lock detail: 'none' (the type of lock from wait_event only); 'targeted': the mode and relation
 * told from wait_event where it fixes them (core/activity.ts derivedWaitLock), pg_locks read only
 * when a waiter waits for another type of lock; 'full' (true): pg_locks' ungranted rows whenever
 * someone waits, so every waiter's exact mode, relation and wait start.
 */
export type LockDetail = 'none' | 'targeted' | 'full';

interface Row extends Omit<SessionRow, 'wait_lock' | 'blocked_by'> {
  /** pg_blocking_pids() as `1,2,3` (see pidList). */
  blocked_by: string | null;
  // What is the same for the whole snapshot comes on dbdoctor's own row only (null on the others):
  // taken_at, database and lock_table on every row were ~60 KB of diagnose's ~350 KB and 4,500 of
  // its fields at 1,500 sessions.
  /** With lock detail: whether the lock table is to be read (the guard's). */
  lock_table?: boolean | null;
  /** With lock detail: the clock reading as seconds since the epoch, for the lock table's wait ages. */
  taken_epoch?: number | null;
  taken_at: string | null;
  database: string | null;
}

/** A row of the lock table's read (lockTableSql): the lock a process waits for (one at a time). */
interface LockRow {
  pid: number;
  locktype: string;
  mode: string | null;
  relation: string | null;
  wait_ms: number | null;
  /** The waited object as one string, and on the first waiter's row (by pid) its holders (`pid:mode,...`). */
  tag: string;
  queued: number | null;
  held: string | null;
}

// date_part() is float8 arithmetic; extract() is numeric since PostgreSQL 14, and four of them per
// row cost measurable server time at incident scale (`npm run bench`).
const ms = (col: string) => `(date_part('epoch', n.t - ${col}) * 1000)`;

/**
 * Every backend's row as the pg_stat_activity view has it, less the names: the view is this
 * function left-joined to pg_database and pg_authid for datname and usename, and filters nothing.
 * Read from the function, a fresh backend neither builds the view nor rewrites it (locks'
 * statement 52.9 -> 50.5 ms on PostgreSQL 18, 55.5 -> 51.3 on 14: 1,500 sessions, psql, medians of
 * 21-25 fresh backends, interleaved); a statement that shows the names joins them itself
 * (ACTIVITY). EXECUTE on the function is what the view needed too (a view runs its functions as the
 * caller); pg_database, which the view read as its owner, is read as the caller, as the server
 * facts and the lock detail read it already.
 */
export const BACKENDS = 'pg_stat_get_activity(NULL)';

// The columns and their meaning are the view's (pg_roles.rolname is pg_authid's), with rolsuper,
// which every row needs.
const ACTIVITY = `(SELECT s.pid, s.leader_pid, s.backend_type, s.datid, d.datname, r.rolname AS usename, s.usesysid, r.rolsuper,
           s.application_name, s.client_addr, s.client_hostname, s.client_port, s.backend_start, s.state,
           s.wait_event_type, s.wait_event, s.xact_start, s.query_start, s.state_change, s.query_id, s.query
      FROM ${BACKENDS} s
      LEFT JOIN pg_database d ON d.oid = s.datid
      LEFT JOIN pg_roles r ON r.oid = s.usesysid)`;

// Without lock detail, pg_blocking_pids() is called in the select list, only for sessions waiting
// on a Lock. With it, pg_stat_activity is read once into `sa` (every part of the statement shares
// it), and who blocks whom comes from pg_locks when its guard holds (lockTableSql), else from
// pg_blocking_pids() (guardCtes). Which roots block through an advisory lock is told by
// their waiters' wait_event (core/blocking.ts), not by folding every granted advisory lock, which
// at incident scale (tens of thousands of advisory locks) was a good part of the statement's time.
const SA_CTE = `,
  sa AS MATERIALIZED ${ACTIVITY}`;

/**
 * How many pids pg_blocking_pids() may be expected to list before pg_locks is read instead, whatever
 * the waits are for. It lists, for each waiter, every waiter ahead of it: one queue of N (a pool of
 * job runners all waiting for one advisory lock) is N^2/2 pids (1,500 waiters: 1,125,750 pids, 448 ms
 * of the server's time, and seconds of dbdoctor's), while many short queues (the bench's incident:
 * 400 or 1,500 waiters under 10 roots) list a pid or two each, far cheaper than building a lock table
 * of 20,000 to 70,000 rows. The estimate is the number of waiters times the mean length of the lists
 * of up to LOCK_QUEUE_SAMPLE of them, spread evenly by pid.
 */
export const LONG_QUEUE_PIDS = 100_000;
const LOCK_QUEUE_SAMPLE = 32;

/** Whether a waiter waits for a lock the lock table must tell: 'full', anyone waiting; 'targeted', a type of lock whose relation or mode its wait_event does not fix (DERIVABLE_LOCK_TYPES in core/activity.ts: transactionid, virtualxid, spectoken and advisory waits need no pg_locks). */
function tableWait(detail: 'targeted' | 'full'): string {
  if (detail === 'full') return "EXISTS (SELECT 1 FROM sa WHERE wait_event_type = 'Lock')";
  return `EXISTS (SELECT 1 FROM sa WHERE wait_event_type = 'Lock' AND wait_event NOT IN (${DERIVABLE_LOCK_TYPES.map((t) => `'${t}'`).join(', ')}))`;
}

/** Whether pg_blocking_pids() would list more than LONG_QUEUE_PIDS pids (estimated from a sample). */
const LONG_QUEUE = `coalesce((SELECT max(w.n) * avg(cardinality(pg_blocking_pids(w.pid)))
                         FROM (SELECT pid, row_number() OVER (ORDER BY pid) AS rn, count(*) OVER () AS n
                                 FROM sa WHERE wait_event_type = 'Lock') w
                        WHERE w.rn % greatest(1, w.n / ${LOCK_QUEUE_SAMPLE}) = 0), 0) > ${LONG_QUEUE_PIDS}`;

/**
 * Whether the role may read pg_locks: a hardened server revokes it (or EXECUTE on pg_lock_status(),
 * which the view runs as its caller). Asked only when the lock table is wanted.
 */
const MAY_READ_LOCK_TABLE = "has_table_privilege('pg_catalog.pg_locks', 'SELECT') AND has_function_privilege('pg_catalog.pg_lock_status()', 'EXECUTE')";

/**
 * The guard and who blocks whom without the lock table. `guard` says whether the lock table is to
 * be read (`lock_table`: a wait needs it, or a queue is long), in a second round trip
 * (lockTableSql), and whether a queue is too long for pg_blocking_pids() (`from_lock_table`). `bp`
 * is pg_blocking_pids() once per Lock waiter when the lock table is not read: its lists grow with
 * the square of a queue, but it does not build the whole lock table (at incident scale, tens of
 * thousands of advisory locks held and short queues, it is the cheaper read; README, "Benchmark").
 * In the 'blocking' scope it is read unless a queue is long, lock table or not: which sessions the
 * statement returns are those of its chains (who blocks whom then comes from the lock table's
 * rows). A hidden waiter (another role's, without pg_read_all_stats) shows no wait, so is in no
 * chain of `bp`: where some rows are hidden and the lock table is read, the sessions in a
 * transaction come too (`with_transactions`), any of which may hold what a hidden session waits for. With 'targeted' detail the guard asks whether the role may read pg_locks: on a server that
 * revokes it, `bp` stands in, in one round trip; 'full' detail, asked for by name (`locks
 * --detail`), is refused as asked.
 */
function guardCtes(detail: 'targeted' | 'full', scope: 'all' | 'blocking'): string {
  const may = detail === 'targeted' ? MAY_READ_LOCK_TABLE : 'true';
  return `,
  guard AS MATERIALIZED (
    SELECT g.lock_table, g.lock_table AND g.long_queue AS from_lock_table, g.lock_table AND g.partial AS with_transactions
      FROM (SELECT CASE WHEN w.table_wait OR w.long_queue THEN ${may} ELSE false END AS lock_table, w.long_queue, w.partial
              FROM (SELECT ${tableWait(detail)} AS table_wait, ${LONG_QUEUE} AS long_queue,
                           EXISTS (SELECT 1 FROM sa WHERE query = '<insufficient privilege>') AS partial) w) g),
  bp AS MATERIALIZED (SELECT pid, pg_blocking_pids(pid) AS blocked_by FROM sa WHERE wait_event_type = 'Lock' AND NOT (SELECT ${scope === 'blocking' ? 'from_lock_table' : 'lock_table'} FROM guard))`;
}

/** pg_locks' tag columns (locktype aside), each with a value that stands for NULL in a join. */
const TAG_COLUMNS: ReadonlyArray<readonly [string, string]> = [
  ['database', '0'],
  ['relation', '0'],
  ['page', '-1'],
  ['tuple', '-1'],
  ['virtualxid', "''"],
  ['transactionid', "'0'::xid"],
  ['classid', '0'],
  ['objid', '0'],
  ['objsubid', '-1'],
];
/** The locked object as one string: equal tags, same lock (core/lock-queue.ts). */
const TAG = (l: string) => `format('${['%s', ...TAG_COLUMNS.map(() => '%s')].join('|')}', ${[`${l}.locktype`, ...TAG_COLUMNS.map(([c]) => `${l}.${c}`)].join(', ')})`;

/**
 * The lock table's side of who blocks whom, and the lock each process waits for, in a round trip
 * of its own, sent only when the activity statement's guard asks for it (its `lock_table` column).
 * Riding in that statement behind a one-time filter, it cost its parsing, its planning and its
 * joins against every session even when the filter was false: 8 ms of a fresh backend's 53 for
 * `diagnose`' statement, 6.7 of 48 for `locks`' (PostgreSQL 18, 1,500 sessions, 400 advisory
 * waiters; README, "Benchmark"). `lk` keeps pg_locks' rows (predicate locks, which never block,
 * left out), `waiting` the ungranted ones (a process waits for one lock at a time; DISTINCT ON keeps
 * one row per pid all the same) with the locked object as one tag and the waiter's place in the
 * object's queue, `holders` the granted modes of each waited object (a hash join on the tag columns,
 * NULL standing for itself) and `held` the same as one text per object, on its first waiter's row
 * (by pid); core/lock-queue.ts orders each queue and draws the edges, linearly in its length. Wait
 * ages are taken on the activity statement's clock reading (`takenEpoch`: as a number, which no
 * DateStyle or TimeZone of the session reads differently), as every other age of the snapshot.
 */
function lockTableSql(takenEpoch: number): string {
  if (!Number.isFinite(takenEpoch)) throw new Error(`the snapshot's clock reading must be a number, not ${takenEpoch}`);
  return `WITH n AS (SELECT to_timestamp(${takenEpoch}) AS t),
  lk AS MATERIALIZED (
    SELECT l.pid, l.locktype, l.mode, l.granted, l.database, l.relation, l.page, l.tuple, l.virtualxid,
           l.transactionid, l.classid, l.objid, l.objsubid, l.waitstart
      FROM pg_locks l
     WHERE l.mode <> 'SIReadLock'
  ),
  waiting AS MATERIALIZED (
    SELECT w.*, row_number() OVER (PARTITION BY w.tag ORDER BY w.waitstart NULLS LAST, w.pid) AS queued
      FROM (SELECT DISTINCT ON (l.pid) l.pid, l.locktype, l.mode,
                   CASE WHEN l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                        THEN l.relation::regclass::text ELSE l.relation::text END AS relation,
                   l.waitstart, ${TAG('l')} AS tag, l.locktype AS t_locktype,
                   ${TAG_COLUMNS.map(([c]) => `l.${c} AS t_${c}`).join(', ')}
              FROM lk l
             WHERE NOT l.granted
             ORDER BY l.pid) w
  ),
  holders AS MATERIALIZED (
    SELECT w.tag, w.pid AS head, coalesce(l.pid, 0) AS pid, l.mode
      FROM (SELECT DISTINCT ON (w.tag) w.* FROM waiting w ORDER BY w.tag, w.pid) w
      JOIN lk l ON l.granted AND l.locktype = w.t_locktype${TAG_COLUMNS.map(
        ([c, none]) => `
           AND coalesce(l.${c}, ${none}) = coalesce(w.t_${c}, ${none})`,
      ).join('')}
  ),
  held AS MATERIALIZED (SELECT tag, head, string_agg(pid || ':' || mode, ',') AS held FROM holders GROUP BY tag, head)
SELECT w.pid, w.locktype, w.mode, w.relation, ${ms('w.waitstart')} AS wait_ms, w.tag, w.queued::int AS queued, h.held
  FROM waiting w
 CROSS JOIN n
  LEFT JOIN held h ON h.tag = w.tag AND h.head = w.pid`;
}

// 'blocking' scope (with lock detail): the sessions of a blocking chain (waiters and the sessions
// they wait for, read once in `chain` from `bp`), their parallel workers, hidden rows (as
// isVisible() in core/activity.ts tells them) and dbdoctor's own session; every session when a
// queue is too long for pg_blocking_pids() (who is in a chain is then told by the lock table's
// rows, which come after); the sessions in a transaction where hidden ones may wait (guardCtes).
const CHAIN_CTE = `,
  chain AS (SELECT pid FROM bp UNION SELECT unnest(blocked_by) FROM bp)`;
const BLOCKING_SCOPE = `
 WHERE a.pid IN (SELECT pid FROM chain)
    OR a.leader_pid IN (SELECT pid FROM chain)
    OR a.query = '<insufficient privilege>'
    OR (a.state IS NULL AND a.query IS NULL)
    OR a.pid = pg_backend_pid()
    OR (SELECT from_lock_table FROM guard)
    OR (a.xact_start IS NOT NULL AND (SELECT with_transactions FROM guard))`;

/** What the activity statement is made of, as activityRead settles it from ActivityOptions. */
interface ActivityShape {
  detail: LockDetail;
  scope: 'all' | 'blocking';
  queryChars: number;
  lean: boolean;
  blockers: boolean;
}

/** The blocked_by column: `bp`'s lists with lock detail, else pg_blocking_pids() for Lock waiters, or nothing. */
function blockedByColumn(withBp: boolean, blockers: boolean): string {
  if (withBp) return 'bp.blocked_by';
  return blockers ? "CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) END" : 'NULL::int[]';
}

/** A column that is the same on every row of the snapshot: sent on dbdoctor's own row only (Row). */
const ownOnly = (expr: string) => `CASE WHEN a.pid = pg_backend_pid() THEN ${expr} END`;

function activitySql({ detail, scope, queryChars, lean, blockers }: ActivityShape): string {
  const blocking = scope === 'blocking';
  const viewOnly = (expr: string, as: string) => (lean ? '' : `\n       ${expr} AS ${as},`);
  const withBp = detail !== 'none'; // the blocking scope comes with lock detail (activityRead)
  return `WITH n AS (SELECT clock_timestamp() AS t)${withBp ? SA_CTE + guardCtes(detail, scope) : ''}${blocking ? CHAIN_CTE : ''}
SELECT a.pid,
       a.leader_pid,
       a.backend_type,
       a.datid,
       a.datname::text AS datname,
       a.usesysid,
       a.usename::text AS usename,
       a.rolsuper AS superuser,
       coalesce(a.application_name, '') AS application_name,
       host(a.client_addr) AS client_addr,${viewOnly('a.client_hostname', 'client_hostname')}${viewOnly('a.client_port', 'client_port')}
       a.backend_start::text AS backend_start,
       a.state,
       a.wait_event_type,
       a.wait_event,${viewOnly(ms('a.backend_start'), 'backend_age_ms')}
       ${ms('a.xact_start')} AS xact_age_ms,
       ${ms('a.query_start')} AS query_age_ms,
       ${ms('a.state_change')} AS state_age_ms,${viewOnly('a.query_id::text', 'query_id')}
       left(a.query, ${queryChars}) AS query,
       array_to_string(${blockedByColumn(withBp, blockers)}, ',') AS blocked_by,
       (a.pid = pg_backend_pid()) AS is_self,
       ${ownOnly('n.t::text')} AS taken_at,
       ${ownOnly('current_database()::text')} AS database${withBp ? `,\n       ${ownOnly('(SELECT lock_table FROM guard)')} AS lock_table,\n       ${ownOnly("date_part('epoch', n.t)")} AS taken_epoch` : ''}
  FROM ${withBp ? 'sa' : ACTIVITY} a
 CROSS JOIN n${withBp ? '\n  LEFT JOIN bp ON bp.pid = a.pid' : ''}${blocking ? BLOCKING_SCOPE : ''}
 ORDER BY a.pid`;
}

const PREPARED_SQL = `SELECT gid, owner::text AS owner, database::text AS database, transaction::text AS transaction,
       (extract(epoch FROM (clock_timestamp() - prepared)) * 1000)::float8 AS age_ms
  FROM pg_prepared_xacts ORDER BY prepared`;

/**
 * pg_blocking_pids() comes as a comma-separated text, not an int[]: a queue of 400 waiters lists
 * ~80,000 pids, and the generic array parser took milliseconds over what a split takes.
 */
function pidList(text: string | null): number[] | null {
  if (text === null) return null;
  return text === '' ? [] : text.split(',').map(Number);
}

/** The holders of a waited object as the statement sends them, `pid:mode,pid:mode` (pid 0: a prepared transaction). */
export function parseHolds(tag: string, text: string | null): LockHold[] {
  if (!text) return [];
  return text.split(',').map((item) => {
    const colon = item.indexOf(':');
    return { pid: Number(item.slice(0, colon)), tag, mode: item.slice(colon + 1) };
  });
}

/**
 * A result row as a SessionRow. Written out field by field (same order as before): object
 * rest/spread over 1,500 rows of 30 columns cost several milliseconds per command at incident
 * scale (measured by `npm run bench`); a plain literal is a fraction of that.
 */
function toSessionRow(r: Row, derive: boolean, lock: LockRow | undefined, fromLocks: ReadonlyMap<number, number[]>): SessionRow {
  return {
    pid: r.pid,
    leader_pid: r.leader_pid,
    backend_type: r.backend_type,
    datid: r.datid,
    datname: r.datname,
    usesysid: r.usesysid,
    usename: r.usename,
    superuser: r.superuser,
    application_name: r.application_name,
    client_addr: r.client_addr,
    client_hostname: r.client_hostname ?? null,
    client_port: r.client_port ?? null,
    backend_start: r.backend_start,
    state: r.state,
    wait_event_type: r.wait_event_type,
    wait_event: r.wait_event,
    backend_age_ms: r.backend_age_ms ?? null,
    xact_age_ms: r.xact_age_ms,
    query_age_ms: r.query_age_ms,
    state_age_ms: r.state_age_ms,
    query_id: r.query_id ?? null,
    query: r.query,
    blocked_by: lock ? (fromLocks.get(r.pid) ?? []) : pidList(r.blocked_by),
    is_self: r.is_self,
    wait_lock: lock
      ? { locktype: lock.locktype, mode: lock.mode ?? '', relation: lock.relation, wait_ms: lock.wait_ms }
      : derive && r.wait_event_type === 'Lock'
        ? derivedWaitLock(r.wait_event, r.query)
        : null,
  };
}

/**
 * The activity statement (withPrepared, and the prepared transactions beside it) and its parser, to
 * send alone (readActivity) or with other reads in one round trip (src/db/sql/read.ts); with lock
 * detail, the lock table in a second when the first says it is needed (its follow-up).
 */
export function activityRead(s: Session, opts: ActivityOptions = {}): Read<ActivitySnapshot> {
  const scope = opts.scope ?? 'all';
  const asked: LockDetail = opts.lockDetail === true ? 'full' : opts.lockDetail === false || opts.lockDetail === undefined ? 'none' : opts.lockDetail;
  const detail: LockDetail = scope === 'blocking' && asked === 'none' ? 'targeted' : asked;
  const withPrepared = (opts.withPrepared ?? false) || detail !== 'none';
  const queryChars = Number.isInteger(opts.queryChars) && (opts.queryChars ?? 0) > 0 ? (opts.queryChars as number) : 2000;
  // The prepared transactions come in the same round trip and the same implicit transaction
  // (simple protocol, so no parameters: queryChars is an integer written into the text).
  const shape: ActivityShape = { detail, scope, queryChars, lean: opts.lean ?? false, blockers: opts.blockers ?? true };
  const activity = activitySql(shape);
  const finish = (rows: readonly object[], prepared: readonly object[], locks: readonly LockRow[]) =>
    snapshotOf(s, rows as Row[], prepared as PreparedXact[], locks, detail === 'targeted');
  return {
    statements: withPrepared ? [activity, PREPARED_SQL] : [activity],
    parse: ([rows = [], prepared = []]) => finish(rows, prepared, []),
    ...(detail === 'none'
      ? {}
      : {
          followUp: ([rows = [], prepared = []]) => {
            // dbdoctor's own row (always there) says whether the lock table is wanted and when the snapshot was taken
            const own = (rows as Row[]).find((r) => r.is_self);
            if (!own?.lock_table || own.taken_epoch == null) return null;
            return { statements: [lockTableSql(own.taken_epoch)], parse: ([locks = []]) => finish(rows, prepared, locks as LockRow[]) };
          },
        }),
  };
}

export function readActivity(s: Session, opts: ActivityOptions = {}): Promise<ActivitySnapshot> {
  return readOne(s, activityRead(s, opts));
}

/** Failures of a read that reading the lock table may cause, and that a read without it may get past. */
const LOCK_TABLE_FAILURES = new Set(['permission_denied', 'query_failed']);

/** The sessions refused the lock table: they keep to pg_blocking_pids(). */
const withoutLockTable = new WeakSet<Session>();

/**
 * Runs a read with 'targeted' lock detail where the session may read the lock table, else without
 * ('none': who blocks whom from pg_blocking_pids()). The activity statement does not name pg_locks,
 * and its guard asks whether the role may read it (MAY_READ_LOCK_TABLE), but the lock table's
 * statement may still be refused (a privilege revoked between the two round trips) or fail: either
 * way the read goes again without it. When that fails as well, the lock table was not the cause,
 * and its error is the read's. After a refusal that reading without the lock table got past, the
 * session keeps to pg_blocking_pids() (a watch pays the extra round trips once, not at every
 * sample). A statement timeout is not retried (the read would wait twice), nor is a lock timeout unless
 * `afterLockTimeout` says so: a one-shot read (terminate's plan, as diagnose's state) may wait
 * twice for a lock on pg_locks to get past it, a watch's sample would wait at every sample.
 */
export async function withLockDetail<T>(session: Session, read: (lockDetail: LockDetail) => Promise<T>, opts: { afterLockTimeout?: boolean } = {}): Promise<T> {
  if (withoutLockTable.has(session)) return read('none');
  try {
    return await read('targeted');
  } catch (err) {
    const retried = err instanceof DbdoctorError && (LOCK_TABLE_FAILURES.has(err.cause_id) || (opts.afterLockTimeout === true && err.cause_id === 'lock_timeout'));
    if (!retried) throw err;
    const value = await read('none');
    if (err.cause_id === 'permission_denied') withoutLockTable.add(session);
    return value;
  }
}

/**
 * Who blocks whom where pg_locks was read: each waiter's blockers from the lock rows' tags and
 * holders. The waits are those of the snapshot's sessions; every object's holders count, whichever
 * waiter's row carries them.
 */
function blockersFromLocks(locks: readonly LockRow[], sessions: ReadonlyMap<number, LockRow>): Map<number, number[]> {
  const waits: LockWait[] = [];
  const holds: LockHold[] = [];
  for (const l of locks) {
    holds.push(...parseHolds(l.tag, l.held));
    if (l.mode && sessions.has(l.pid)) waits.push({ pid: l.pid, tag: l.tag, mode: l.mode, queued: l.queued ?? 0 });
  }
  return waits.length === 0 ? new Map() : queueBlockers(waits, holds);
}

function snapshotOf(s: Session, rows: Row[], prepared: PreparedXact[], locks: readonly LockRow[], derive: boolean): ActivitySnapshot {
  const own = rows.find((r) => r.is_self);
  // The lock each of the snapshot's sessions waits for (one per process). The lock table is read
  // a round trip after the snapshot was taken: a wait begun since (a negative age) was not one then.
  const waitOf = new Map<number, LockRow>();
  if (locks.length > 0) {
    const lockOf = new Map(locks.map((l) => [l.pid, l]));
    for (const r of rows) {
      const l = lockOf.get(r.pid);
      if (l && !(l.wait_ms !== null && l.wait_ms < 0)) waitOf.set(r.pid, l);
    }
  }
  const fromLocks = blockersFromLocks(locks, waitOf);
  return {
    server_version_num: s.serverVersionNum,
    taken_at: own?.taken_at ?? new Date().toISOString(),
    database: own?.database ?? s.target.dbname,
    prepared,
    rows: rows.map((r) => toSessionRow(r, derive, waitOf.get(r.pid), fromLocks)),
  };
}
