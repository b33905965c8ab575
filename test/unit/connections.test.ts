import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { clientSessions } from '../../src/core/activity.js';
import {
  clientMatcher,
  compileFilter,
  connectionsReport,
  filterSessions,
  globToRegExp,
  groupSessions,
  median,
  normalizeState,
  parseGroupBy,
  parseAddress,
  parseClientRange,
  summarizeOtherProcesses,
  visibilityOf,
} from '../../src/core/connections.js';
import { worst, worstOf } from '../../src/core/capacity.js';
import { UsageError } from '../../src/core/errors.js';
import type { Severity } from '../../src/core/exit-codes.js';
import { largest } from '../../src/core/stats.js';
import { hiddenRow, row, snapshot } from './inspect-fixtures.js';

const settings = { max_connections: 20, superuser_reserved: 3, reserved: 2, current_user: 'monitor', can_read_all_stats: true };

describe('globs', () => {
  test('* and ? match, everything else is literal', () => {
    expect(globToRegExp('api*').test('api-v2')).toBe(true);
    expect(globToRegExp('api*').test('xapi')).toBe(false);
    expect(globToRegExp('a?i').test('api')).toBe(true);
    expect(globToRegExp('a.i').test('api')).toBe(false);
    expect(globToRegExp('a(b)[c]+').test('a(b)[c]+')).toBe(true);
    expect(globToRegExp('').test('')).toBe(true);
    expect(globToRegExp('*').test('line\nbreak')).toBe(true);
  });
  test('any string is its own glob when it holds no * or ?', () => {
    fc.assert(fc.property(fc.string().filter((s) => !/[*?]/.test(s)), (s) => globToRegExp(s).test(s)));
  });
});

/**
 * The hand-written matcher BlockList replaced (issue #19), kept here as the oracle: both notations
 * of an address as one 128-bit number (IPv4 as ::ffff:a.b.c.d), a range as a mask over it.
 */
function referenceAddress(text: string): bigint | null {
  const v4 = (t: string): bigint | null => {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(t);
    if (!m || m.slice(1).some((p) => Number(p) > 255 || (p.length > 1 && p.startsWith('0')))) return null;
    return m.slice(1).reduce((v, p) => (v << 8n) | BigInt(Number(p)), 0n);
  };
  const four = v4(text);
  if (four !== null) return (0xffffn << 32n) | four;
  let head = text;
  let tail: bigint | null = null;
  const last = text.lastIndexOf(':');
  if (text.slice(last + 1).includes('.')) {
    tail = v4(text.slice(last + 1));
    if (tail === null) return null;
    head = `${text.slice(0, last + 1)}0:0`;
  }
  const halves = head.split('::');
  if (halves.length > 2) return null;
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  const left = groups(halves[0]!);
  const right = halves.length === 2 ? groups(halves[1]!) : [];
  if (![...left, ...right].every((g) => /^[0-9a-f]{1,4}$/i.test(g))) return null;
  const missing = 8 - left.length - right.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  let value = 0n;
  for (const g of [...left, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...right]) value = (value << 16n) | BigInt(Number.parseInt(g, 16));
  return tail === null ? value : (value & ~0xffffffffn) | tail;
}
function referenceMatch(spec: string, client: string): boolean {
  const [addr, bitsText] = spec.split('/');
  const dotted = /^[\d.]+$/.test(addr!);
  const bits = bitsText === undefined ? (dotted ? 32 : 128) : Number(bitsText);
  const prefix = BigInt(dotted ? bits + 96 : bits);
  const mask = prefix === 0n ? 0n : ((1n << prefix) - 1n) << (128n - prefix);
  const other = referenceAddress(client);
  return other !== null && (other & mask) === (referenceAddress(addr!)! & mask);
}

const octet = fc.integer({ min: 0, max: 255 });
const ipv4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));
/** IPv4 addresses near a few networks, so that ranges and clients often meet. */
const nearIpv4 = fc.tuple(fc.constantFrom('10.1.2', '10.1.3', '192.168.0', '127.0.0'), octet).map(([n, o]) => `${n}.${o}`);
const ipv6 = fc.oneof(fc.ipV6(), fc.tuple(fc.constantFrom('fd00::', 'fd00:0:0:1::', '2001:db8::'), fc.integer({ min: 0, max: 0xffff })).map(([n, g]) => `${n}${g.toString(16)}`));
/** How a client shows in pg_stat_activity: IPv4, IPv4-mapped IPv6 (dual-stack), IPv6. */
const clientAddr = fc.oneof(ipv4, nearIpv4, nearIpv4.map((a) => `::ffff:${a}`), ipv6);
/** A range with no bits set past its prefix (the network of a random address). */
function networkRange(addr: string, bits: number): string {
  const family = addr.includes(':') ? 6 : 4;
  const total = family === 4 ? 32 : 128;
  const value = referenceAddress(addr)! & (family === 4 ? 0xffffffffn : (1n << 128n) - 1n);
  const net = bits === 0 ? 0n : (value >> BigInt(total - bits)) << BigInt(total - bits);
  if (family === 4) return `${[24n, 16n, 8n, 0n].map((s) => (net >> s) & 0xffn).join('.')}/${bits}`;
  const groups = Array.from({ length: 8 }, (_, i) => ((net >> BigInt(112 - 16 * i)) & 0xffffn).toString(16));
  return `${groups.join(':')}/${bits}`;
}

describe('addresses and CIDR ranges', () => {
  const at = (addr: string | null, visible = true) => (visible ? row({ pid: 1, client_addr: addr }) : hiddenRow({ pid: 1 }));
  test('IPv4 and IPv6 parse; an IPv4-mapped address is its IPv4 address; nonsense and zone ids do not', () => {
    expect(parseAddress('10.0.0.5')).toEqual({ family: 'ipv4', bytes: [10, 0, 0, 5], text: '10.0.0.5', mapped: false });
    expect(parseAddress('::ffff:10.0.0.5')).toEqual({ family: 'ipv4', bytes: [10, 0, 0, 5], text: '10.0.0.5', mapped: true });
    expect(parseAddress('::FFFF:a00:5')).toEqual({ family: 'ipv4', bytes: [10, 0, 0, 5], text: '10.0.0.5', mapped: true });
    expect(parseAddress('::1')).toMatchObject({ family: 'ipv6', text: '::1', bytes: [...Array<number>(15).fill(0), 1] });
    expect(parseAddress('FD00:0:0:0:0:0:1:2')).toMatchObject({ family: 'ipv6', text: 'fd00::1:2' });
    // IPv4-compatible (::a.b.c.d, deprecated) is an IPv6 address, not an IPv4 one
    expect(parseAddress('::10.0.0.5')).toMatchObject({ family: 'ipv6', text: '::a00:5' });
    for (const bad of ['10.0.0.256', '10.0.0', '010.0.0.1', 'fd00:::1', '1:2:3:4:5:6:7:8:9', 'host.example', '', '1::2::3', 'fe80::1%eth0', '[::1]', '10.0.0.0/8']) {
      expect([bad, parseAddress(bad)]).toEqual([bad, null]);
    }
  });
  test('matchers: exact, CIDR, IPv6, local; hidden rows never match an address', () => {
    expect(clientMatcher('10.0.0.0/8')(at('10.200.1.1'))).toBe(true);
    expect(clientMatcher('10.0.0.0/8')(at('11.0.0.1'))).toBe(false);
    expect(clientMatcher('10.0.0.5')(at('10.0.0.5'))).toBe(true);
    expect(clientMatcher('10.0.0.5')(at('10.0.0.6'))).toBe(false);
    expect(clientMatcher('0.0.0.0/0')(at('192.168.1.1'))).toBe(true);
    expect(clientMatcher('0.0.0.0/0')(at('::1'))).toBe(false);
    expect(clientMatcher('fd00::/8')(at('fd12::5'))).toBe(true);
    expect(clientMatcher('fd00::/8')(at('fe80::1'))).toBe(false);
    expect(clientMatcher('[fd00::]/8')(at('fd12::5'))).toBe(true);
    expect(clientMatcher('[::1]')(at('::1'))).toBe(true);
    expect(clientMatcher('::ffff:10.0.0.0/104')(at('10.1.2.3'))).toBe(true);
    expect(clientMatcher('local')(at(null))).toBe(true);
    expect(clientMatcher('LOCAL')(at('10.0.0.5'))).toBe(false);
    expect(clientMatcher('local')(at(null, false))).toBe(false);
    expect(clientMatcher('10.0.0.0/8')(at(null, false))).toBe(false);
    expect(clientMatcher('::/0')(at(null, false))).toBe(false);
    expect(clientMatcher('0.0.0.0/0')(at(null))).toBe(false);
    // an address PostgreSQL would never show matches nothing (and throws nothing)
    expect(clientMatcher('0.0.0.0/0')(at('not an address'))).toBe(false);
    expect(clientMatcher('::/0')(at('fe80::1%eth0'))).toBe(false);
  });
  test('an IPv4 range matches IPv4 clients in both notations; ::ffff:a.b.c.d/(96+n) is a.b.c.d/n', () => {
    const clients = ['10.1.2.7', '::ffff:10.1.2.7', '::ffff:a01:207', '10.1.3.7', '::ffff:10.1.3.7', '::1', 'fd00::1'];
    const matching = (spec: string) => clients.filter((c) => clientMatcher(spec)(at(c)));
    expect(matching('10.1.2.0/24')).toEqual(['10.1.2.7', '::ffff:10.1.2.7', '::ffff:a01:207']);
    expect(matching('::ffff:10.1.2.0/120')).toEqual(['10.1.2.7', '::ffff:10.1.2.7', '::ffff:a01:207']);
    expect(matching('::ffff:10.1.2.7')).toEqual(['10.1.2.7', '::ffff:10.1.2.7', '::ffff:a01:207']);
    expect(matching('::ffff:0.0.0.0/96')).toEqual(['10.1.2.7', '::ffff:10.1.2.7', '::ffff:a01:207', '10.1.3.7', '::ffff:10.1.3.7']);
    expect(matching('0.0.0.0/0')).toEqual(matching('::ffff:0.0.0.0/96'));
    // all of IPv6 space holds the mapped block too, as written
    expect(matching('::/0')).toEqual(clients);
    expect(parseClientRange('::ffff:10.1.2.0/120')).toEqual(parseClientRange('10.1.2.0/24'));
    expect(parseClientRange('::ffff:10.1.2.0/120')).toEqual({ family: 'ipv4', network: '10.1.2.0', prefix: 24 });
  });
  test('a range with bits set past its prefix is refused, naming the network that was meant (as the cidr type does)', () => {
    const refused = (spec: string) => {
      try {
        clientMatcher(spec);
      } catch (err) {
        return { message: (err as UsageError).message, hint: (err as UsageError).hint };
      }
      throw new Error(`${spec} was accepted`);
    };
    expect(refused('10.1.2.3/24')).toEqual({ message: 'invalid --client "10.1.2.3/24": bits are set past the /24 prefix', hint: 'write the network 10.1.2.0/24, or the single address 10.1.2.3' });
    expect(refused('10.1.2.0/8').hint).toBe('write the network 10.0.0.0/8, or the single address 10.1.2.0');
    expect(refused('fd00::1/8').hint).toBe('write the network fd00::/8, or the single address fd00::1');
    expect(refused('::ffff:10.1.2.3/120').hint).toBe('write the network ::ffff:10.1.2.0/120, or the single address ::ffff:10.1.2.3');
    for (const ok of ['10.1.2.0/24', '10.1.2.3/32', '10.1.2.3', '0.0.0.0/0', 'fd00::/8', '::/0', '::1/128', '::ffff:10.1.2.0/120', '::ffff:0.0.0.0/96']) {
      expect(() => clientMatcher(ok)).not.toThrow();
    }
  });
  test('an IPv4-mapped prefix shorter than /96 is refused with the IPv4 range to write instead', () => {
    const e = (() => {
      try {
        clientMatcher('::ffff:10.1.2.0/24');
      } catch (err) {
        return err as UsageError;
      }
      throw new Error('accepted');
    })();
    expect(e).toBeInstanceOf(UsageError);
    expect(e.message).toBe('invalid --client "::ffff:10.1.2.0/24": an IPv4-mapped prefix shorter than /96 reaches past IPv4 into IPv6 space');
    expect(e.hint).toMatch(/^write the IPv4 range instead \(10\.1\.2\.0\/24\)/);
    for (const spec of ['::ffff:10.0.0.0/8', '::ffff:0.0.0.0/95', '::ffff:10.1.2.0/64', '::ffff:0:0/0']) expect(() => clientMatcher(spec)).toThrow(/IPv4-mapped prefix shorter than \/96/);
  });
  test('zone ids are refused: PostgreSQL shows client addresses without them', () => {
    expect(() => clientMatcher('fe80::1%eth0')).toThrow(/without a zone id/);
    expect(() => clientMatcher('fe80::%2/64')).toThrow(/without a zone id/);
  });
  test('bad ranges and empty values are usage errors', () => {
    for (const bad of ['10.0.0.0/33', '10.0.0.0/x', '10.0.0.0/8/8', 'db1.example', '::1/129', '10.0.0.0/', '/8', '10/8', '::ffff:10.0.0.0/129']) expect(() => clientMatcher(bad)).toThrow(UsageError);
    for (const empty of ['', ' ']) expect(() => clientMatcher(empty)).toThrow('--client has an empty value');
  });
  test('BlockList matches as the hand-written 128-bit matcher it replaced, on every range it still accepts', () => {
    fc.assert(
      fc.property(fc.oneof(ipv4, nearIpv4, ipv6), fc.nat(), clientAddr, (base, n, client) => {
        const bits = n % ((base.includes(':') ? 128 : 32) + 1);
        const spec = networkRange(base, bits);
        expect([spec, client, clientMatcher(spec)(at(client))]).toEqual([spec, client, referenceMatch(spec, client)]);
      }),
      { numRuns: 3000 },
    );
  });
  test('an IPv4 range and its IPv4-mapped twin select the same clients', () => {
    fc.assert(
      fc.property(nearIpv4, fc.integer({ min: 0, max: 32 }), clientAddr, (base, bits, client) => {
        const spec = networkRange(base, bits);
        const [net, len] = spec.split('/');
        expect(clientMatcher(`::ffff:${net}/${Number(len) + 96}`)(at(client))).toBe(clientMatcher(spec)(at(client)));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('filters', () => {
  const rows = [
    row({ pid: 1, application_name: 'api', state: 'idle', state_age_ms: 10_000 }),
    row({ pid: 2, application_name: 'api-v2', usename: 'other', state: 'active', state_age_ms: 500 }),
    row({ pid: 3, application_name: 'worker', datname: 'jobs', state: 'idle in transaction', client_addr: '192.168.0.9', state_age_ms: 60_000 }),
    hiddenRow({ pid: 4, application_name: 'api' }),
  ];
  const pids = (f: Parameters<typeof filterSessions>[1]) => filterSessions(rows, f).map((r) => r.pid);
  test('each filter, and their combination (AND across, OR within)', () => {
    expect(pids({})).toEqual([1, 2, 3, 4]);
    expect(pids({ app: ['api*'] })).toEqual([1, 2, 4]);
    expect(pids({ app: ['api', 'worker'] })).toEqual([1, 3, 4]);
    expect(pids({ user: ['other'] })).toEqual([2]);
    expect(pids({ db: ['jobs'] })).toEqual([3]);
    expect(pids({ state: ['idle-in-transaction'] })).toEqual([3]);
    expect(pids({ state: ['hidden'] })).toEqual([4]);
    expect(pids({ state: ['IDLE', 'active'] })).toEqual([1, 2]);
    expect(pids({ client: ['192.168.0.0/16'] })).toEqual([3]);
    expect(pids({ minAgeMs: 5_000 })).toEqual([1, 3]);
    expect(pids({ app: ['api*'], minAgeMs: 5_000 })).toEqual([1]);
  });
  test('unknown states are usage errors; state spellings are normalized', () => {
    expect(() => compileFilter({ state: ['sleeping'] })).toThrow(UsageError);
    expect(normalizeState('idle_in_transaction_aborted')).toBe('idle in transaction (aborted)');
    expect(normalizeState(' Fastpath-Function-Call ')).toBe('fastpath function call');
    expect(() => compileFilter({ state: ['starting', 'disabled'] })).not.toThrow();
  });
  test('an empty or blank value of any filter is a usage error, never "matches the empty name"', () => {
    for (const key of ['app', 'user', 'db', 'state', 'client'] as const) {
      for (const values of [[''], [' '], ['x', ''], ['', 'x']]) {
        expect(() => compileFilter({ [key]: values })).toThrow(new UsageError(`--${key} has an empty value`));
      }
    }
    // a session without an application_name is not selected by --app "" (select it by pid)
    expect(() => filterSessions([row({ pid: 1, application_name: '' })], { app: [''] })).toThrow(UsageError);
  });
});

describe('grouping', () => {
  test('--by parses keys, aliases and rejects unknown ones', () => {
    expect(parseGroupBy('app,client')).toEqual(['app', 'client']);
    expect(parseGroupBy(' database , role,app,app')).toEqual(['db', 'user', 'app']);
    expect(() => parseGroupBy('app,colour')).toThrow(UsageError);
    expect(() => parseGroupBy(',')).toThrow(UsageError);
    for (const empty of ['', 'app,', ',app', 'app,,user', 'app, ,user']) expect(() => parseGroupBy(empty)).toThrow('--by has an empty value');
  });
  test('median of odd and even counts', () => {
    expect(median([])).toBeNull();
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
  });
  test('count, oldest and median age in state, oldest transaction, wait events of busy sessions only', () => {
    const rows = [
      row({ pid: 1, state: 'idle', state_age_ms: 1_000 }),
      row({ pid: 2, state: 'idle', state_age_ms: 3_000 }),
      row({ pid: 3, state: 'idle', state_age_ms: 8_000 }),
      row({ pid: 4, state: 'active', wait_event_type: 'Lock', wait_event: 'tuple', state_age_ms: 2_000, xact_age_ms: 9_000 }),
      row({ pid: 5, state: 'active', wait_event_type: 'Lock', wait_event: 'tuple', state_age_ms: 4_000, xact_age_ms: 4_000 }),
      row({ pid: 6, state: 'active', wait_event_type: 'Client', wait_event: 'ClientRead', state_age_ms: 6_000, xact_age_ms: 6_000 }),
      row({ pid: 7, application_name: 'worker', state: 'idle in transaction', state_age_ms: 100, xact_age_ms: 200 }),
      hiddenRow({ pid: 8 }),
    ];
    const groups = groupSessions(rows, ['state', 'app']);
    expect(groups.map((g) => [g.state, g.app, g.count])).toEqual([
      ['active', 'api', 3],
      ['idle', 'api', 3],
      ['hidden', 'api', 1],
      ['idle in transaction', 'worker', 1],
    ]);
    expect(groups[0]).toMatchObject({ oldest_state_age_ms: 6_000, median_state_age_ms: 4_000, oldest_xact_age_ms: 9_000, pids: [4, 5, 6] });
    expect(groups[0]!.wait_events).toEqual([
      { wait_event_type: 'Lock', wait_event: 'tuple', count: 2 },
      { wait_event_type: 'Client', wait_event: 'ClientRead', count: 1 },
    ]);
    expect(groups[1]).toMatchObject({ oldest_state_age_ms: 8_000, median_state_age_ms: 3_000, oldest_xact_age_ms: null, wait_events: [] });
    expect(groups[2]).toMatchObject({ oldest_state_age_ms: null, median_state_age_ms: null });
    expect(groups[3]!.wait_events).toEqual([]);
    // Only the grouped keys are present.
    expect(Object.keys(groups[0]!)).not.toContain('user');
    const byClient = groupSessions(rows, ['client']);
    expect(byClient.map((g) => [g.client, g.count])).toEqual([
      ['10.0.0.5', 7],
      [null, 1],
    ]);
  });
  test('an empty list makes no groups', () => {
    expect(groupSessions([], ['app'])).toEqual([]);
  });
  test('one group as large as PostgreSQL allows (262,143 sessions): its oldest ages without overflowing the stack', () => {
    // Math.max(...ages) threw "Maximum call stack size exceeded" from ~130,000 values on.
    const rows = Array.from({ length: 262_143 }, (_, i) => row({ pid: i + 1, state: 'idle', state_age_ms: i, xact_age_ms: i === 7 ? 500_000 : null }));
    const [g] = groupSessions(rows, ['app']);
    expect(g).toMatchObject({ count: 262_143, oldest_state_age_ms: 262_142, oldest_xact_age_ms: 500_000 });
  });
});

describe('worstOf', () => {
  test('the worst severity of a list longer than a call can spread (one per group of sessions)', () => {
    const many = new Array<Severity>(300_000).fill('info');
    expect(worstOf(many)).toBe('info');
    many[123_456] = 'critical';
    expect(worstOf(many)).toBe('critical');
    expect(worstOf([])).toBe('ok');
    expect(worstOf(['warning', 'unknown', 'info'])).toBe(worst('warning', 'unknown', 'info'));
  });
});

describe('largest', () => {
  test('the largest value, nulls left out, null when there is none', () => {
    expect(largest([])).toBeNull();
    expect(largest([null, undefined])).toBeNull();
    expect(largest([3, null, 7, -1])).toBe(7);
    expect(largest([-5, -2])).toBe(-2);
    expect(largest(new Array<number>(300_000).fill(1).concat([2]))).toBe(2);
  });
  test('agrees with Math.max on what Math.max can take', () => {
    // -0 and 0 are one value here (Math.max prefers 0, a loop keeps the first): no -0 in the input
    const value = fc.double({ noNaN: true }).map((v) => (v === 0 ? 0 : v));
    fc.assert(fc.property(fc.array(fc.option(value, { nil: null }), { maxLength: 50 }), (values) => {
      const present = values.filter((v): v is number => v !== null);
      expect(largest(values)).toBe(present.length ? Math.max(...present) : null);
    }));
  });
});

describe('the report', () => {
  test('client sessions apart from background processes, parallel workers under their leader, dbdoctor left out', () => {
    const snap = snapshot([
      row({ pid: 1, application_name: 'api' }),
      row({ pid: 2, application_name: 'reports', state: 'active', wait_event_type: null, wait_event: null }),
      row({ pid: 3, backend_type: 'parallel worker', leader_pid: 2, application_name: '', state: 'active' }),
      row({ pid: 4, backend_type: 'parallel worker', leader_pid: 2, application_name: '', state: 'active' }),
      row({ pid: 5, backend_type: 'autovacuum launcher', datname: null, usename: null, state: null, application_name: '' }),
      row({ pid: 6, backend_type: 'walsender', application_name: 'standby1', state: 'streaming' }),
      row({ pid: 7, application_name: 'dbdoctor', state: 'active', is_self: true }),
      row({ pid: 8, backend_type: 'checkpointer', datname: null, usename: null, state: null, application_name: '' }),
    ]);
    const r = connectionsReport(snap, settings, { by: ['app'], list: true });
    expect(r.total).toBe(2);
    expect(r.groups.map((g) => [g.app, g.count, g.parallel_workers])).toEqual([
      ['api', 1, 0],
      ['reports', 1, 2],
    ]);
    expect(r.other_processes).toEqual([
      { backend_type: 'parallel worker', count: 2, pids: [3, 4], leader_pids: [2] },
      { backend_type: 'autovacuum launcher', count: 1, pids: [5], leader_pids: [] },
      { backend_type: 'checkpointer', count: 1, pids: [8], leader_pids: [] },
      { backend_type: 'walsender', count: 1, pids: [6], leader_pids: [] },
    ]);
    // Capacity counts dbdoctor's own slot: 3 client backends of 20 - 3 - 2 = 15 ordinary slots.
    expect(r.capacity).toMatchObject({ client_backends: 3, ordinary_slots: 15, headroom: 12, severity: 'ok' });
    expect(r.sessions!.find((x) => x.pid === 2)!.parallel_workers).toBe(2);
    expect(r.status).toBe('ok');
  });

  test('capacity severity decides the status; a partial view makes it unknown unless critical', () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => row({ pid: 100 + i }));
    expect(connectionsReport(snapshot(many(12)), settings).status).toBe('warning');
    expect(connectionsReport(snapshot(many(15)), settings).status).toBe('critical');
    expect(connectionsReport(snapshot([...many(2), hiddenRow({ pid: 1 })]), settings).status).toBe('unknown');
    expect(connectionsReport(snapshot([...many(14), hiddenRow({ pid: 1 })]), settings).status).toBe('critical');
  });

  test('hidden rows: clients counted as "hidden", background processes (no database) kept apart', () => {
    const snap = snapshot([
      row({ pid: 1, usename: 'me' }),
      hiddenRow({ pid: 2, application_name: 'api' }),
      hiddenRow({ pid: 3, application_name: 'api' }),
      hiddenRow({ pid: 4, application_name: '', datname: null, usename: null }),
    ]);
    expect(clientSessions(snap).map((r) => r.pid)).toEqual([1, 2, 3]);
    const r = connectionsReport(snap, { ...settings, can_read_all_stats: false, current_user: 'Me Too' });
    expect(r.states).toEqual({ hidden: 2, idle: 1 });
    expect(r.visibility).toMatchObject({ partial: true, hidden: 2, can_read_all_stats: false });
    expect(r.visibility.warning).toBe('partial view: 2 sessions of other roles are hidden from role "Me Too" (counted as "hidden"); grant it pg_monitor to see them');
    expect(r.visibility.fix).toBe('GRANT pg_monitor TO "Me Too";');
    expect(summarizeOtherProcesses(snap)).toEqual([{ backend_type: 'hidden', count: 1, pids: [4], leader_pids: [] }]);
    expect(r.capacity.client_backends).toBe(3);
  });

  test('no pg_read_all_stats but nothing hidden yet: still partial, with a warning', () => {
    const v = visibilityOf(snapshot([row({ pid: 1 })]), { can_read_all_stats: false, role: 'app' });
    expect(v).toMatchObject({ partial: true, hidden: 0 });
    expect(v.warning).toMatch(/lacks pg_read_all_stats/);
    expect(visibilityOf(snapshot([row({ pid: 1 })]), { can_read_all_stats: true }).warning).toBeNull();
  });

  test('unknown states and backend types never crash', () => {
    const snap = snapshot([row({ pid: 1, state: 'starting' }), row({ pid: 2, state: 'some future state' }), row({ pid: 3, backend_type: 'walsummarizer', datname: null })]);
    const r = connectionsReport(snap, settings, { by: ['state'] });
    expect(r.states).toEqual({ 'some future state': 1, starting: 1 });
    expect(r.other_processes.map((p) => p.backend_type)).toEqual(['walsummarizer']);
  });
});
