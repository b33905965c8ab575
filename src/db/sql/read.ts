/**
 * A read: statements without parameters, and how to turn their result sets into facts. Reads
 * that go together are sent together (`readTogether`): one round trip, and one implicit
 * transaction, so every statement in it sees the same pg_stat_activity snapshot (the server builds
 * that snapshot once per transaction; at 1,500 sessions that costs several milliseconds).
 *
 * The catch: one failing statement fails the whole round trip. Reads whose failure the caller
 * would tolerate (an optional fact) go in their own round trip, or ride along with a way back:
 * `diagnose` (src/db/diagnose.ts) sends them with the state, and on a failure they could have
 * caused, reads the state again alone and the optional facts apart. A read may ask for a second
 * round trip from what the first returned (`followUp`): that one is a transaction of its own, and
 * what the first round trip finished stands when it fails (`readFirst`).
 */
import type { Session } from '../session.js';

export interface Read<T> {
  /** Each statement on its own: no parameters (simple protocol), no trailing ';'. */
  readonly statements: readonly string[];
  /** Turns this read's result sets, one per statement and in order, into its facts. */
  parse(results: readonly object[][]): T;
  /**
   * For a read whose first results say whether it needs more (the activity read: the lock table
   * only when a wait needs it): the read that finishes it from them, in a second round trip, or
   * null when `parse` finishes it alone. A statement the server would plan whatever the answer
   * costs its planning and its joins every time; asked for only when needed, it costs a round
   * trip only then. The reads sent together send their second reads together, in one round trip.
   */
  followUp?(results: readonly object[][]): Read<T> | null;
}

/**
 * What the first round trip of reads sent together gave: the value of each read that needed no
 * second round trip (undefined for the others), and `finish`, which sends the follow-ups the others
 * asked for together (in a transaction of their own) and gives every value. A caller that can go
 * on without a follow-up (diagnose, when the lock table cannot be read) keeps `done` when
 * `finish` fails.
 */
export interface FirstRoundTrip<T extends unknown[]> {
  readonly done: { readonly [K in keyof T]: T[K] | undefined };
  finish(): Promise<T>;
}

/** Sends the reads in one round trip and parses each read that needs no more from its own result sets. */
export async function readFirst<T extends unknown[]>(s: Session, ...reads: { [K in keyof T]: Read<T[K]> }): Promise<FirstRoundTrip<T>> {
  const all = reads.flatMap((r) => r.statements);
  const results = await s.multi<object>(all.join(';\n'));
  if (results.length !== all.length) throw new Error(`expected ${all.length} result sets, the server sent ${results.length}`);
  let at = 0;
  const own = reads.map((r) => {
    const mine = results.slice(at, at + r.statements.length);
    at += r.statements.length;
    return mine;
  });
  const next = reads.map((r, i) => (r as Read<unknown>).followUp?.(own[i]!) ?? null);
  const done = reads.map((r, i) => (next[i] ? undefined : (r as Read<unknown>).parse(own[i]!)));
  const wanted = next.filter((r): r is Read<unknown> => r !== null);
  return {
    done: done as FirstRoundTrip<T>['done'],
    finish: async () => {
      const finished = wanted.length > 0 ? await readTogether<unknown[]>(s, ...wanted) : [];
      let k = 0;
      return done.map((v, i) => (next[i] ? finished[k++] : v)) as T;
    },
  };
}

/** Sends the reads in one round trip and parses each from its own result sets (and the follow-ups they ask for in a second). */
export async function readTogether<T extends unknown[]>(s: Session, ...reads: { [K in keyof T]: Read<T[K]> }): Promise<T> {
  return (await readFirst<T>(s, ...reads)).finish();
}

/** One read in its own round trip. */
export async function readOne<T>(s: Session, read: Read<T>): Promise<T> {
  const [value] = await readTogether<[T]>(s, read);
  return value;
}

/** A SQL literal of a non-negative integer, for statements that cannot carry parameters. */
export function intLiteral(n: number, what: string): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${what} must be a non-negative integer, not ${n}`);
  return String(n);
}

/** A SQL text[] literal of the given strings, for statements that cannot carry parameters. */
export function textArrayLiteral(values: readonly string[]): string {
  return `ARRAY[${values.map((v) => `'${v.replace(/'/g, "''")}'`).join(', ')}]::text[]`;
}
