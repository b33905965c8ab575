/**
 * One pg_stat_activity row for the pure tests: a visible, idle client backend. Each suite passes
 * the defaults its cases are about (state, ages, query) and the test overrides the rest.
 */
import type { SessionRow } from '../../src/core/activity.js';

export function sessionRow(over: Partial<SessionRow> & { pid: number }): SessionRow {
  return {
    leader_pid: null,
    backend_type: 'client backend',
    datname: 'app',
    usename: 'app_user',
    superuser: false,
    application_name: 'api',
    client_addr: '10.0.0.5',
    client_hostname: null,
    client_port: 50000,
    backend_start: '2026-01-01 00:00:00.123456+00',
    state: 'idle',
    wait_event_type: 'Client',
    wait_event: 'ClientRead',
    backend_age_ms: 600_000,
    xact_age_ms: null,
    query_age_ms: 1_000,
    state_age_ms: 1_000,
    query_id: null,
    query: 'SELECT 1',
    blocked_by: null,
    wait_lock: null,
    is_self: false,
    ...over,
  };
}
