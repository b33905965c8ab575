#!/usr/bin/env node
// `npm run bench`'s second floor: Node with pg (the client dbdoctor bundles) replaying the SQL a
// dbdoctor command sent, one statement per round trip as the psql replay sends them, and printing
// every row as JSON. It is what any Node tool on pg pays on this host for the same reads and a
// document of them, before deciding anything: dbdoctor's distance from it is dbdoctor's own (its
// CLI's start-up, the TLS attempt sslmode=prefer makes, deciding, rendering); this floor's
// distance from node -e 0 + psql is Node's and pg's.
//
//   node scripts/bench-pg-replay.cjs statements.json   (a JSON array of SQL texts; PG* from the environment)
//
// The bench runs it bundled with pg into one file, as dbdoctor runs (scripts/bundle.js).
//
// Over one plain connection (ssl: false): psql, under the default sslmode=prefer, asks the server
// for TLS first on the same socket, a round trip this floor does not make.
'use strict';

const { readFileSync } = require('node:fs');
const pg = require('pg');

async function replay(file) {
  const statements = JSON.parse(readFileSync(file, 'utf8'));
  const client = new pg.Client({ ssl: false, application_name: 'bench-pg-replay', connectionTimeoutMillis: 30_000 });
  await client.connect();
  try {
    const results = [];
    for (const sql of statements) {
      const r = await client.query(sql);
      for (const one of Array.isArray(r) ? r : [r]) results.push(one.rows);
    }
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  } finally {
    await client.end();
  }
}

replay(process.argv[2]).catch((err) => {
  process.stderr.write(`bench-pg-replay: ${err.message || err.code || String(err)}\n`);
  process.exitCode = 1;
});
