/**
 * The settings that guard against connection incidents, at server level (pg_settings) and as
 * overridden per role, per database and per role in a database (pg_db_role_setting). One
 * statement, in a round trip it may share (src/db/sql/read.ts). PostgreSQL 14-18:
 * idle_session_timeout and client_connection_check_interval are 14+, transaction_timeout is 17+;
 * the names asked for are chosen from server_version_num.
 *
 * dbdoctor SETs statement_timeout, lock_timeout and idle_in_transaction_session_timeout (and
 * DateStyle, which is not read here) on its own session, so `setting` is its own value: the
 * server's is `reset_val`, which is what a new session gets. reset_val includes overrides for
 * dbdoctor's own role and database, and what its own connection options set (`-c name=value` in
 * options or PGOPTIONS); the decision code knows them from the override list and from
 * client_options, and treats such a server value as masked.
 * Both catalogs are readable by every role.
 */
import { settingsInOptions } from '../../core/conninfo.js';
import type { SettingsFacts } from '../../core/diagnose.js';
import type { Session } from '../session.js';
import { type Read, textArrayLiteral } from './read.js';

export function settingNames(serverVersionNum: number): string[] {
  const names = [
    'statement_timeout',
    'lock_timeout',
    'idle_in_transaction_session_timeout',
    'tcp_keepalives_idle',
    'tcp_keepalives_interval',
    'tcp_keepalives_count',
    'tcp_user_timeout',
    'log_lock_waits',
    'deadlock_timeout',
  ];
  if (serverVersionNum >= 140000) names.push('idle_session_timeout', 'client_connection_check_interval');
  if (serverVersionNum >= 170000) names.push('transaction_timeout');
  return names;
}

const settingsSql = (names: string) => `SELECT
  (SELECT coalesce(json_agg(json_build_object(
            'name', s.name, 'value', s.reset_val, 'unit', s.unit, 'vartype', s.vartype,
            'context', s.context, 'boot_val', s.boot_val) ORDER BY s.name), '[]'::json)
     FROM pg_settings s WHERE s.name = ANY(${names})) AS settings,
  (SELECT coalesce(json_agg(json_build_object(
            'role', r.rolname::text, 'database', d.datname::text,
            'role_oid', nullif(o.setrole, 0)::int8, 'database_oid', nullif(o.setdatabase, 0)::int8,
            'name', split_part(c.item, '=', 1), 'value', substr(c.item, strpos(c.item, '=') + 1))
            ORDER BY r.rolname NULLS FIRST, d.datname NULLS FIRST, c.item), '[]'::json)
     FROM pg_db_role_setting o
     LEFT JOIN pg_roles r ON r.oid = o.setrole
     LEFT JOIN pg_database d ON d.oid = o.setdatabase
     CROSS JOIN LATERAL unnest(o.setconfig) AS c(item)
    WHERE split_part(c.item, '=', 1) = ANY(${names})) AS overrides,
  current_user::text AS current_user,
  current_database()::text AS current_database`;

/** The statement (the names written in as a literal) and its parser; see src/db/sql/read.ts. */
export function settingsRead(s: Session): Read<SettingsFacts> {
  const names = settingNames(s.serverVersionNum);
  const fromOptions = settingsInOptions(s.target.options);
  return {
    statements: [settingsSql(textArrayLiteral(names))],
    parse([rows = []]) {
      const row = rows[0] as Omit<SettingsFacts, 'server_version_num'> | undefined;
      if (!row) throw new Error('the settings query returned no row');
      return {
        server_version_num: s.serverVersionNum,
        settings: row.settings,
        overrides: row.overrides,
        current_user: row.current_user,
        current_database: row.current_database,
        client_options: names.filter((n) => fromOptions.has(n)),
      };
    },
  };
}
