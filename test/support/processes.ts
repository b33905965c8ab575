/** Local processes (the demo's server, the CLI under test): Linux's /proc, else `ps` (macOS). */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

/** The state letter of a process, or null when there is no such process. */
export function procState(pid: number): string | null {
  if (existsSync('/proc/self')) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    } catch {
      return null;
    }
  }
  try {
    const state = execFileSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return state === '' ? null : state.slice(0, 1);
  } catch {
    return null; // ps exits 1 when there is no such process
  }
}

/** Whether the process is still running (a zombie, or no process, is not). */
export function running(pid: number): boolean {
  const s = procState(pid);
  return s !== null && s !== 'Z' && s !== 'X';
}
