/**
 * runbooks/ and the code agree: every node id in the code is an anchor in runbooks/, every link
 * the code prints resolves (including the links between runbooks), and `dbdoctor runbook [id]`
 * finds each one.
 */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { listRunbooks, RUNBOOKS_DIR, runRunbook, sectionFor } from '../../src/commands/runbook.js';
import { classifyConnectError } from '../../src/core/classify.js';
import { DIAGNOSE_NODES, diagnose, NODE_RUNBOOKS, type NodeId } from '../../src/core/diagnose.js';
import { UsageError } from '../../src/core/errors.js';
import { page } from '../../src/ui/pager.js';
import { connectNode, RUNBOOK_FILES, RUNBOOK_NODES, runbookLink } from '../../src/core/runbooks.js';
import { resolveThresholds } from '../../src/core/thresholds.js';
import { type FixtureName, fixture } from '../support/diagnose.js';
import { captureOutput } from '../support/output.js';

const files = readdirSync(RUNBOOKS_DIR).filter((f) => f.endsWith('.md'));
const text = (file: string) => readFileSync(join(RUNBOOKS_DIR, file), 'utf8');
const anchorsOf = (file: string) => [...text(file).matchAll(/<a id="([^"]+)"><\/a>/g)].map((m) => m[1]!);

/** Resolves runbooks/<file>.md#<anchor> (or <file>.md#<anchor> relative to runbooks/). */
function resolves(link: string): boolean {
  const m = /^(?:runbooks\/)?([a-z-]+\.md)#([a-z0-9-]+)$/.exec(link);
  if (!m) return false;
  return files.includes(m[1]!) && anchorsOf(m[1]!).includes(m[2]!);
}

describe('node ids and anchors', () => {
  test('every runbook file the code knows exists, and every file in runbooks/ is known', () => {
    expect(files.sort()).toEqual(Object.values(RUNBOOK_FILES).sort());
  });

  test('every node id in the code is an anchor in its runbook file', () => {
    for (const [node, file] of Object.entries(RUNBOOK_NODES)) {
      expect([node, anchorsOf(RUNBOOK_FILES[file])]).toEqual([node, expect.arrayContaining([node])]);
    }
  });

  test("every node of diagnose's tree is an anchor in the runbook its room mirrors", () => {
    for (const node of DIAGNOSE_NODES) {
      const file = NODE_RUNBOOKS.get(node);
      expect([node, file !== undefined && resolves(`runbooks/${RUNBOOK_FILES[file]}#${node}`)]).toEqual([node, true]);
    }
  });

  test('anchors are unique across runbooks, and each is known to the code', () => {
    const all = files.flatMap(anchorsOf);
    expect(new Set(all).size).toBe(all.length);
    const tree = new Set<string>(DIAGNOSE_NODES);
    for (const a of all) expect([a, RUNBOOK_NODES[a] !== undefined || tree.has(a) || a in RUNBOOK_FILES]).toEqual([a, true]);
  });
});

describe('every link the code prints resolves', () => {
  test('the connect failures (check and diagnose)', () => {
    for (const [step, cause] of [
      ['dns', 'dns_not_found'],
      ['tcp', 'refused'],
      ['tcp', 'timeout'],
      ['tls', 'tls_failed'],
      ['auth', 'auth_failed'],
      ['database', 'database_missing'],
      ['slots', 'out_of_slots'],
      ['slots', 'connection_limit'],
      ['startup', 'not_accepting'],
      ['protocol', 'closed'],
    ] as const) {
      expect([step, cause, resolves(runbookLink(connectNode(step, cause)))]).toEqual([step, cause, true]);
    }
  });

  test("every finding of every recorded incident, at default and lowered thresholds, and the connect finding", () => {
    const names: FixtureName[] = ['seeds-000', 'seeds-000-pg14', 'lock-chain', 'same-statement', 'listeners', 'healthy-busy', 'unprivileged'];
    const low = resolveThresholds({ flags: { idle_in_transaction: '1s', client_wait: '1s', idle: '1s', idle_pool: '5' } });
    const links = new Set<string>();
    for (const n of names) {
      for (const t of [undefined, low]) for (const f of diagnose(fixture(n), t).findings) links.add(f.runbook);
    }
    const ctx = { host: 'h', port: 5432, user: 'u', dbname: 'd', connectTimeoutMs: 5000, sslmode: 'prefer' };
    const down = { ...fixture('healthy-busy'), connect: { ok: false as const, failure: classifyConnectError({ code: 'ECONNREFUSED' }, ctx), ms: 1 } };
    for (const f of diagnose(down).findings) links.add(f.runbook);
    expect(links.size).toBeGreaterThan(10);
    for (const l of links) expect([l, resolves(l)]).toEqual([l, true]);
  });

  test('links between runbooks resolve', () => {
    for (const f of files) {
      for (const m of text(f).matchAll(/\]\(([a-z-]+\.md)?#([a-z0-9-]+)\)/g)) {
        const link = `${m[1] ?? f}#${m[2]}`;
        expect([f, link, resolves(link)]).toEqual([f, link, true]);
      }
    }
  });
});

describe('what the runbooks say', () => {
  const leafNodes = ['idle-in-transaction', 'unread-results', 'idle-pool', 'blocking', 'long-queries', 'top-statements', 'seq-scans'];

  test('each branch names the dbdoctor command that does the step, and keeps the manual SQL', () => {
    for (const node of leafNodes) {
      const section = sectionFor(text(RUNBOOK_FILES[NODE_RUNBOOKS.get(node as NodeId)!]), node)!;
      expect([node, /`dbdoctor [a-z]/.test(section)]).toEqual([node, true]);
      expect([node, section.includes('```sql')]).toEqual([node, true]);
    }
    for (const node of DIAGNOSE_NODES.filter((n) => n.startsWith('setting-'))) {
      const section = sectionFor(text('settings.md'), node)!;
      expect([node, /```sql\n(ALTER|SELECT)/.test(section)]).toEqual([node, true]);
    }
  });
});

describe('dbdoctor runbook [id]', () => {
  test('without an id: the list of runbooks with their node ids', () => {
    const r = runRunbook(undefined);
    expect(r.kind).toBe('list');
    const list = listRunbooks();
    expect(list.map((x) => x.id)).toEqual(Object.keys(RUNBOOK_FILES));
    expect(list.find((x) => x.id === 'leaks')!.nodes).toEqual(['leaks', 'idle-in-transaction', 'unread-results', 'idle-pool', 'listeners']);
  });

  test('a runbook id prints the file; a node id prints its section only', () => {
    const whole = runRunbook('leaks');
    expect(whole).toMatchObject({ kind: 'page', file: 'runbooks/leaks.md', section: false });
    const section = runRunbook('idle-in-transaction');
    expect(section).toMatchObject({ kind: 'page', file: 'runbooks/leaks.md', section: true });
    if (section.kind !== 'page') throw new Error('not a page');
    expect(section.text.split('\n')[0]).toBe('## Sessions idle in transaction');
    expect(section.text).not.toContain('## Results never read to the end');
    // A link as diagnose prints it works too.
    expect(runRunbook('runbooks/leaks.md#unread-results')).toMatchObject({ kind: 'page', section: true });
    // The top anchor of a file is the whole file.
    expect(runRunbook('blocking-locks')).toMatchObject({ section: false });
  });

  test('an unknown id is a usage error with the list as a hint', () => {
    expect(() => runRunbook('no-such-node')).toThrow(UsageError);
    expect(() => runRunbook('no-such-node')).toThrow(/no runbook or section "no-such-node"/);
  });
});

describe('the pager', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dbdoctor-pager-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function ctx(isTTY: boolean, env: Record<string, string>) {
    const { output, out } = captureOutput({ tty: isTTY });
    return { ctx: { output, env }, out };
  }

  test('not a terminal: plain text on stdout, no pager', async () => {
    const { ctx: c, out } = ctx(false, { PAGER: '/nonexistent/pager' });
    await page('hello', c.output, c.env);
    expect(out).toEqual(['hello\n']);
  });

  test('a terminal: the text goes through $PAGER', async () => {
    const pager = join(dir, 'pager.sh');
    writeFileSync(pager, '#!/bin/sh\ncat > "$PAGER_OUT"\n');
    chmodSync(pager, 0o755);
    const { ctx: c, out } = ctx(true, { PAGER: pager, PAGER_OUT: join(dir, 'paged.txt'), PATH: process.env.PATH ?? '/usr/bin:/bin' });
    await page('## Section\nbody', c.output, c.env);
    expect(out).toEqual([]);
    expect(readFileSync(join(dir, 'paged.txt'), 'utf8')).toBe('## Section\nbody\n');
  });

  test('a pager that cannot start does not swallow the text', async () => {
    const { ctx: c, out } = ctx(true, { PAGER: join(dir, 'no-such-pager') });
    await page('still here', c.output, c.env);
    expect(out).toEqual(['still here\n']);
  });
});
