/**
 * runbooks/cannot-connect.md: the `connect` node. When dbdoctor cannot connect, or connects but
 * cannot gather the facts, this is the whole diagnosis: one finding that says why, with the hint
 * of the failure and the command that walks the connection step by step.
 */
import { fixedStep, textStep } from '../printed.js';
import type { Severity } from '../exit-codes.js';
import { runbookLink } from '../runbooks.js';
import { emptyEvidence, finding, type NodeResult, pathStep, runbookStep } from './shared.js';
import type { DiagnoseFacts, GatherError } from './types.js';

export const NODES = ['connect'] as const;

/** The server could not be reached, or dbdoctor's own set-up is wrong. */
export function cannotConnect(facts: DiagnoseFacts & { connect: { ok: false } }): NodeResult {
  const f = facts.connect.failure;
  const severity: Severity = f.exit_code === 2 ? 'critical' : 'unknown';
  const unreachable = severity === 'critical';
  const ev = emptyEvidence();
  ev.facts = [`step: ${f.step}`, `cause: ${f.cause}${f.code ? ` (${f.code})` : ''}`, `target: ${facts.target}`];
  const title = `cannot connect: ${f.message}`;
  const fd = finding(
    'cannot-connect',
    'connect',
    severity,
    title,
    ev,
    unreachable
      ? 'the server is unreachable from here: down, refused, out of connection slots, starting or stopping, or the network drops the connection'
      : "dbdoctor's own set-up is the problem (its credentials, database name, TLS or privileges), so it cannot judge the server",
    [textStep(f.hint), fixedStep('walk the connection step by step, with the cause of the first step that fails', 'check'), runbookStep('connect')],
    title,
  );
  // The section for the step that failed, which may be another runbook's (out of slots).
  fd.runbook = runbookLink(f.runbook);
  return { findings: [fd], path: [pathStep('connect', 'can dbdoctor connect?', unreachable ? 'unreachable' : 'own-setup', `${f.step} failed: ${f.cause}`)] };
}

/** Connected, but the facts could not be read (the server went away, a timeout, a permission). */
export function cannotGather(facts: DiagnoseFacts, e: GatherError): NodeResult {
  const severity: Severity = e.exit_code === 2 ? 'critical' : 'unknown';
  const ev = emptyEvidence();
  ev.facts = [`cause: ${e.cause}`, `target: ${facts.target}`];
  const title = `connected, but could not gather the facts: ${e.message}`;
  const fd = finding(
    'cannot-connect',
    'connect',
    severity,
    title,
    ev,
    severity === 'critical' ? 'the server went away while dbdoctor was reading it (shutdown, crash or network)' : 'dbdoctor could not read what it needs, so it cannot judge the server',
    [...(e.hint ? [textStep(e.hint)] : []), fixedStep('check the connection and what this role can do', 'check'), runbookStep('connect')],
    title,
  );
  return {
    findings: [fd],
    path: [
      pathStep('connect', 'can dbdoctor connect?', 'yes', 'connected'),
      pathStep('connect', 'could it read the facts?', severity === 'critical' ? 'server-gone' : 'failed', `${e.cause}: ${e.message}`),
    ],
  };
}
