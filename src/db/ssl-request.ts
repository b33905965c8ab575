/**
 * sslmode=prefer over TCP on one connection, as libpq makes it: the SSLRequest is sent here, on a
 * socket of dbdoctor's own. To 'S' TLS starts over that socket (with the options prefer takes); to
 * 'N' the session goes on in the clear over the same socket. node-postgres, asked for TLS, ends the
 * socket on 'N', so the plain attempt was a second TCP connection and a second backend forked by
 * the server (~9 ms a command on a loopback, `npm run bench`; a round trip more across a network).
 *
 * The socket is then handed to pg through its `stream` option, with TLS off (it is done already):
 * pg calls connect() on the stream it is given and waits for 'connect', so the handed socket's
 * connect() only says that it is connected.
 */
import { isIP, type Socket, connect as tcpConnect } from 'node:net';
import type { ConnectionOptions as TlsOptions } from 'node:tls';

/** The SSLRequest: its length, then the code 80877103 (1234 in the high 16 bits, 5679 in the low). */
function sslRequest(): Buffer {
  const buf = Buffer.alloc(8);
  buf.writeInt32BE(8, 0);
  buf.writeInt32BE(80877103, 4);
  return buf;
}

export interface Negotiation {
  /** The address to connect to (hostaddr, else host) and its port. */
  host: string;
  port: number;
  /** What TLS takes when the server says 'S'. */
  tls: TlsOptions;
  /** Connect, request and handshake must be done within this (connect_timeout's share). */
  timeoutMs: number;
  signal?: AbortSignal;
}

/**
 * Connects, asks for TLS and returns the socket ready for the start-up message: a TLS socket when
 * the server said 'S', the plain one when it said 'N'. Failures carry node-postgres' words for the
 * same cases (core/classify reads them): a reply that is neither, a close before any reply, the
 * connect timeout. Network and TLS errors are Node's own, as pg passed them on.
 */
export function negotiateSsl(n: Negotiation): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const raw = tcpConnect({ host: n.host, port: n.port });
    raw.setNoDelay(true);
    let current: Socket = raw;
    let settled = false;
    const finish = (err: Error | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      n.signal?.removeEventListener('abort', onAbort);
      raw.removeListener('error', onError);
      raw.removeListener('close', onClose);
      raw.removeListener('data', onReply);
      if (err) {
        current.destroy();
        raw.destroy();
        reject(err);
        return;
      }
      // pg listens to the socket it is handed (a TLS socket passes on the raw one's errors).
      current.removeListener('error', onError);
      resolve(handOver(current));
    };
    const onError = (err: Error) => finish(err);
    const onClose = () => finish(new Error('Connection terminated unexpectedly'));
    const onAbort = () => finish(new Error('Connection terminated'));
    const timer = setTimeout(() => finish(new Error('timeout expired')), n.timeoutMs);
    const onReply = (data: Buffer) => {
      raw.removeListener('data', onReply);
      const reply = data[0];
      // The server sends nothing after its one byte until the start-up message (or the TLS
      // handshake; TLS then reads the socket itself): more would be someone else speaking. So
      // nothing arrives before pg listens.
      if (data.length !== 1 || (reply !== 0x53 && reply !== 0x4e)) {
        finish(new Error('There was an error establishing an SSL connection'));
        return;
      }
      if (reply === 0x4e) {
        finish(null);
        return;
      }
      // As node-postgres: SNI names the host it connected to unless that is an address (RFC 6066),
      // and the TLS options (hostaddr's host and servername among them) have the last word. node:tls
      // is loaded only here: a server without TLS costs no TLS code.
      const options: TlsOptions = { socket: raw, host: n.host, ...(isIP(n.host) === 0 ? { servername: n.host } : {}), ...n.tls };
      // tls.connect throws at once on options it cannot use (a key that does not decrypt or match
      // its certificate, a CRL that does not parse): that is a failure of this attempt too.
      import('node:tls')
        .then(({ connect }) => {
          if (settled) return;
          const secure = connect(options);
          current = secure;
          secure.on('error', onError);
          secure.once('secureConnect', () => finish(null));
        })
        .catch(finish);
    };
    raw.on('error', onError);
    raw.on('close', onClose);
    raw.on('data', onReply);
    raw.once('connect', () => raw.write(sslRequest()));
    n.signal?.addEventListener('abort', onAbort, { once: true });
    if (n.signal?.aborted) onAbort();
  });
}

/** The socket as pg's `stream`: already connected, so connect() reports just that. */
function handOver(socket: Socket): Socket {
  socket.connect = (() => {
    process.nextTick(() => socket.emit('connect'));
    return socket;
  }) as Socket['connect'];
  return socket;
}
