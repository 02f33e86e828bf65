import type { Socket } from 'node:net';
import type { Logger } from '../log.js';
import {
  LineDecoder, LineTooLongError, parseRequest, encodeMessage, ControlProtocolError, MAX_REQUEST_LINE,
  type ControlRequest, type ControlResponse,
} from '../wire/control-codec.js';

export interface ControlHandler {
  handle(req: ControlRequest): Promise<ControlResponse>;
}

export interface ControlLimits {
  /** A control connection that sends no request for this long is closed. */
  idleMs: number;
  maxLineBytes?: number;
}

/**
 * One control-protocol connection: requests answered in order, one JSON line each. A
 * malformed or oversized line gets an ERROR answer, a warning in the log, and the close.
 */
export function serveControl(socket: Socket, first: Buffer, handler: ControlHandler, limits: ControlLimits, log: Logger): void {
  const who = `${socket.remoteAddress}:${socket.remotePort}`;
  const decoder = new LineDecoder(limits.maxLineBytes ?? MAX_REQUEST_LINE);
  let queue = Promise.resolve();
  let closed = false;
  socket.setTimeout(limits.idleMs, () => {
    log.debug({ peer: who }, 'closing idle control connection');
    socket.destroy();
  });
  socket.on('close', () => (closed = true));
  const fail = (why: string) => {
    if (closed) return;
    closed = true;
    log.warn({ peer: who }, `closing control connection: ${why}`);
    socket.end(encodeMessage({ type: 'ERROR', error: why }));
    setTimeout(() => socket.destroy(), 1000).unref();
  };
  const onData = (chunk: Buffer) => {
    if (closed) return;
    let lines: string[];
    try {
      lines = decoder.push(chunk);
    } catch (err) {
      return fail(err instanceof LineTooLongError ? `request line longer than ${limits.maxLineBytes ?? MAX_REQUEST_LINE} bytes` : (err as Error).message);
    }
    for (const line of lines) {
      if (line.trim() === '') continue;
      let req: ControlRequest;
      try {
        req = parseRequest(line);
      } catch (err) {
        return fail(err instanceof ControlProtocolError ? err.message : `bad request: ${(err as Error).message}`);
      }
      queue = queue.then(async () => {
        if (closed) return;
        let res: ControlResponse;
        try {
          res = await handler.handle(req);
        } catch (err) {
          log.error({ peer: who, err: (err as Error).message }, 'control request failed');
          res = { type: 'ERROR', error: 'internal error' };
        }
        if (!closed) socket.write(encodeMessage(res));
      });
    }
  };
  socket.on('data', onData);
  onData(first);
}
