import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { nowMs } from './clock.js';

export interface DnsResult {
  addresses: string[];
  ms: number;
  skipped: boolean;
}

/** Resolves the host as the connection will (skipped for IP addresses and Unix sockets). */
export async function resolveHost(host: string, timeoutMs: number): Promise<DnsResult> {
  if (host.startsWith('/') || isIP(host)) return { addresses: host.startsWith('/') ? [] : [host], ms: 0, skipped: true };
  const t0 = nowMs();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error('DNS lookup timed out'), { code: 'EAI_AGAIN' })), timeoutMs);
  });
  try {
    const found = await Promise.race([lookup(host, { all: true }), timeout]);
    return { addresses: found.map((a) => a.address), ms: nowMs() - t0, skipped: false };
  } finally {
    clearTimeout(timer);
  }
}
