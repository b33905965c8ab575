/** Local processes as Linux's /proc shows them (the demo's server, the CLI under test). */
import { readFileSync } from 'node:fs';

/** The state letter of a process, or null when there is no such process. */
export function procState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

/** Whether the process is still running (a zombie, or no process, is not). */
export function running(pid: number): boolean {
  const s = procState(pid);
  return s !== null && s !== 'Z' && s !== 'X';
}
