/**
 * The snapshot document, pure: the recorded incidents (test/unit/fixtures/diagnose) kept as a
 * `dbdoctor.snapshot` and read back decide exactly as the facts did; the document matches
 * schema/snapshot.schema.json; secrets in other clients' statements and secret-named settings
 * are masked; a hostile or broken document is a usage error naming where it is wrong.
 */
import { describe, expect, test } from '@jest/globals';
import { diagnose } from '../../src/core/diagnose.js';
import { UsageError } from '../../src/core/errors.js';
import { factsFromSnapshot, maskFacts, parseSnapshotText } from '../../src/core/snapshot.js';
import { envelope, renderJson } from '../../src/render/json.js';
import { fixture, type FixtureName } from '../support/diagnose.js';
import { expectValidSnapshotDoc } from '../support/schemas.js';

const NAMES: FixtureName[] = ['seeds-000', 'seeds-000-pg14', 'lock-chain', 'same-statement', 'listeners', 'healthy-busy', 'unprivileged'];

describe('a snapshot round trip decides as the facts did', () => {
  test.each(NAMES)('%s', (name) => {
    const facts = fixture(name);
    const text = renderJson(envelope('snapshot', maskFacts(facts), '0.0.0'));
    const doc = JSON.parse(text) as unknown;
    expectValidSnapshotDoc(doc);
    const back = parseSnapshotText(text, 'x.json');
    const a = diagnose(facts);
    const b = diagnose(back);
    expect(b.findings.map((f) => [f.id, f.severity, f.evidence.pids])).toEqual(a.findings.map((f) => [f.id, f.severity, f.evidence.pids]));
    expect(b.verdict).toBe(a.verdict);
  });
});

describe('masking', () => {
  test("other clients' statement secrets, secret-named settings and URLs in messages", () => {
    const facts = fixture('seeds-000');
    const row = facts.activity!.rows.find((r) => !r.is_self)!;
    row.query = "ALTER ROLE app PASSWORD 'hunter2-xyz'";
    facts.settings!.overrides.push({ role: 'app', database: null, name: 'app.secret_key', value: 'hunter2-ovr' });
    facts.gather_error = { cause: 'x', message: 'at postgres://u:hunter2-url@db/app', hint: null, exit_code: 3 };
    const text = JSON.stringify(maskFacts(facts));
    expect(text).not.toMatch(/hunter2/);
    expect(text).toContain("PASSWORD '***'");
  });
});

describe('a broken or hostile document is a usage error', () => {
  const good = () => JSON.parse(renderJson(envelope('snapshot', maskFacts(fixture('lock-chain')), '0.0.0'))) as { report: Record<string, unknown> & { activity: { rows: Array<Record<string, unknown>> } } };
  const cases: Array<[string, (d: ReturnType<typeof good>) => unknown]> = [
    ['not an object', () => 42],
    ['another kind', (d) => ({ ...d, schema: 'dbdoctor.locks' })],
    ['a pid that is text', (d) => {
      d.report.activity.rows[0]!.pid = '1; DROP';
      return d;
    }],
    ['blocked_by with a string', (d) => {
      d.report.activity.rows[0]!.blocked_by = ['x'];
      return d;
    }],
    ['no rows list', (d) => {
      d.report.activity = { ...d.report.activity, rows: null as never };
      return d;
    }],
    ['connect neither', (d) => {
      d.report.connect = { ok: 'yes' };
      return d;
    }],
    ['a pid listed twice (its two rows would leave which one counts to each reader)', (d) => {
      d.report.activity.rows.push({ ...d.report.activity.rows[0]!, backend_start: '2000-01-01 00:00:00+00' });
      return d;
    }],
    ['a bad limit kind', (d) => {
      d.report.limits = [{ kind: 'table', name: 'x', conn_limit: 1, connections: 1 }];
      return d;
    }],
  ];
  test.each(cases)('%s', (_name, breakIt) => {
    expect(() => factsFromSnapshot(breakIt(good()), 'f.json')).toThrow(UsageError);
  });
  test('not JSON', () => {
    expect(() => parseSnapshotText('{', 'f.json')).toThrow(/f\.json is not valid JSON/);
  });
  test('a pid listed twice is named', () => {
    const d = good();
    d.report.activity.rows.push({ ...d.report.activity.rows[0]! });
    expect(() => factsFromSnapshot(d, 'f.json')).toThrow(new RegExp(`activity\\.rows\\[${d.report.activity.rows.length - 1}\\]\\.pid ${d.report.activity.rows[0]!.pid} is listed twice`));
  });
});
