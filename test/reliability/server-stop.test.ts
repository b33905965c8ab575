/**
 * The throwaway server (the demo's, the suite's) is stopped without leaving any of its processes
 * behind, even when a fast shutdown hangs: a stopped checkpointer never writes the shutdown
 * checkpoint, so the fast shutdown waits for ever; stopping must then go through an immediate
 * shutdown (in which the postmaster SIGKILLs the children that do not exit) rather than SIGKILL the
 * postmaster and orphan its children.
 */
import { expect, test } from '@jest/globals';
import pg from 'pg';
import { startServer } from '../../src/db/embedded.js';
import { running } from '../support/processes.js';

test('a fast stop that hangs ends the server and every child of it', async () => {
  const server = await startServer({ fastStopMs: 500 });
  let checkpointer = 0;
  try {
    const c = new pg.Client({ connectionString: server.url(), application_name: 'server-stop-test' });
    await c.connect();
    try {
      const rows = (await c.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")).rows;
      checkpointer = rows[0]!.pid;
    } finally {
      await c.end();
    }
    process.kill(checkpointer, 'SIGSTOP');
    await server.stop('fast');
    expect(server.exited).toBe(true);
    expect(running(server.pid)).toBe(false);
    expect(running(checkpointer)).toBe(false);
  } finally {
    // Whatever happened above: nothing of this test's server outlives it.
    if (checkpointer !== 0 && running(checkpointer)) {
      process.kill(checkpointer, 'SIGCONT');
      process.kill(checkpointer, 'SIGKILL');
    }
    if (!server.exited) await server.stop('immediate');
  }
});
