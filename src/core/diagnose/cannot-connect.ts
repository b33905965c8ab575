/**
 * runbooks/cannot-connect.md: the `connect` node. When dbdoctor cannot connect, or connects but
 * cannot gather the facts, this is the whole diagnosis: one finding that says why, with the hint
 * of the failure and the command that walks the connection step by step.
 */
import { fixedStep, type NextStep, textStep } from '../printed.js';
import type { Severity } from '../exit-codes.js';
import { runbookLink } from '../runbooks.js';
import { emptyEvidence, finding, type NodeResult, pathStep, runbookStep } from './shared.js';
import type { DiagnoseFacts, Finding, GatherError } from './types.js';

export const NODES = ['connect'] as const;

/** The one finding of a diagnosis that could not start: critical for exit code 2 (the server), else unknown (dbdoctor's own set-up). */
function connectFinding(exitCode: number, title: string, facts: string[], cause: { critical: string; unknown: string }, next: NextStep[]): Finding {
  const severity: Severity = exitCode === 2 ? 'critical' : 'unknown';
  const ev = emptyEvidence();
  ev.facts = facts;
  return finding('cannot-connect', 'connect', severity, title, ev, cause[severity], next, title);
}

/** The server could not be reached, or dbdoctor's own set-up is wrong. */
export function cannotConnect(facts: DiagnoseFacts & { connect: { ok: false } }): NodeResult {
  const f = facts.connect.failure;
  const fd = connectFinding(
    f.exit_code,
    `cannot connect: ${f.message}`,
    [`step: ${f.step}`, `cause: ${f.cause}${f.code ? ` (${f.code})` : ''}`, `target: ${facts.target}`],
    {
      critical: 'the server is unreachable from here: down, refused, out of connection slots, starting or stopping, or the network drops the connection',
      unknown: "dbdoctor's own set-up is the problem (its credentials, database name, TLS or privileges), so it cannot judge the server",
    },
    [textStep(f.hint), fixedStep('walk the connection step by step, with the cause of the first step that fails', 'check'), runbookStep('connect')],
  );
  // The section for the step that failed, which may be another runbook's (out of slots).
  fd.runbook = runbookLink(f.runbook);
  return { findings: [fd], path: [pathStep('connect', 'can dbdoctor connect?', fd.severity === 'critical' ? 'unreachable' : 'own-setup', `${f.step} failed: ${f.cause}`)] };
}

/** Connected, but the facts could not be read (the server went away, a timeout, a permission). */
export function cannotGather(facts: DiagnoseFacts, e: GatherError): NodeResult {
  const fd = connectFinding(
    e.exit_code,
    `connected, but could not gather the facts: ${e.message}`,
    [`cause: ${e.cause}`, `target: ${facts.target}`],
    { critical: 'the server went away while dbdoctor was reading it (shutdown, crash or network)', unknown: 'dbdoctor could not read what it needs, so it cannot judge the server' },
    [...(e.hint ? [textStep(e.hint)] : []), fixedStep('check the connection and what this role can do', 'check'), runbookStep('connect')],
  );
  return {
    findings: [fd],
    path: [
      pathStep('connect', 'can dbdoctor connect?', 'yes', 'connected'),
      pathStep('connect', 'could it read the facts?', fd.severity === 'critical' ? 'server-gone' : 'failed', `${e.cause}: ${e.message}`),
    ],
  };
}
