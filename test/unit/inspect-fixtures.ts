/** Recorded-style snapshots for the pure connections/locks/queries functions. */
import type { ActivitySnapshot, PreparedXact, SessionRow } from '../../src/core/activity.js';
import { sessionRow } from '../support/session-row.js';

export const row = sessionRow;

/** A row as a role without pg_read_all_stats sees another role's session. */
export function hiddenRow(over: Partial<SessionRow> & { pid: number }): SessionRow {
  return row({
    backend_type: null,
    client_addr: null,
    client_port: null,
    backend_start: null,
    state: null,
    wait_event_type: null,
    wait_event: null,
    backend_age_ms: null,
    xact_age_ms: null,
    query_age_ms: null,
    state_age_ms: null,
    query: '<insufficient privilege>',
    ...over,
  });
}

export function snapshot(rows: SessionRow[], prepared: PreparedXact[] = []): ActivitySnapshot {
  return { server_version_num: 180000, taken_at: '2026-01-01 00:10:00+00', database: 'app', rows, prepared };
}

/** A lock waiter blocked by `by`. */
export function waiter(pid: number, by: number[], over: Partial<SessionRow> = {}): SessionRow {
  return row({
    pid,
    state: 'active',
    wait_event_type: 'Lock',
    wait_event: 'transactionid',
    xact_age_ms: 5_000,
    query_age_ms: 5_000,
    state_age_ms: 5_000,
    query: 'UPDATE t SET v = v + 1 WHERE id = 1',
    blocked_by: by,
    wait_lock: { locktype: 'transactionid', mode: 'ShareLock', relation: null, wait_ms: 5_000 },
    ...over,
  });
}
