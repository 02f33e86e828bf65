import type { Socket } from 'node:net';
import type { Logger } from '../util/log.js';
import {
  LineDecoder, LineTooLongError, parseRequest, encodeMessage, ControlProtocolError, MAX_REQUEST_LINE,
  type ControlRequest, type ControlResponse,
} from '../wire/control-codec.js';

export interface ControlHandler {
  handle(req: ControlRequest): Promise<ControlResponse>;
  /**
   * Start a subscription (the `subscribe` request): the snapshot to answer with and the
   * way to end it, or an ERROR answer when refused (too many subscribers).
   */
  subscribe?(sub: Subscriber): { snapshot: ControlResponse; unsubscribe(): void } | { refused: string };
}

/** One subscribed connection, as the node sees it: push a message, nothing else. */
export interface Subscriber {
  readonly who: string;
  send(msg: ControlResponse): void;
}

/** An idle subscription gets a HEARTBEAT this often, so both ends notice a dead link. */
export const SUBSCRIPTION_HEARTBEAT_MS = 15_000;
/** A subscriber that lets this much pile up unread is too slow to keep. */
export const MAX_SUBSCRIBER_BACKLOG = 1024 * 1024;

export interface ControlLimits {
  /** A control connection that sends no request for this long is closed. */
  idleMs: number;
  maxLineBytes?: number;
}

/** Requests one connection may have waiting for their answers; more is a flood, and closes it. */
export const MAX_PIPELINED = 64;
/** Waiting requests at which we stop reading the connection until they are answered. */
const PAUSE_AT = 8;

/**
 * One control-protocol connection: requests answered in order, one JSON line each. A
 * malformed or oversized line gets an ERROR answer, a warning in the log, and the close.
 * Bounded: at most MAX_PIPELINED requests wait (reading stops at PAUSE_AT), an answer the
 * client does not read stops the next one until the socket drains, and the event loop is
 * yielded between answers, so one connection can neither grow memory nor starve the others.
 */
export function serveControl(socket: Socket, first: Buffer, handler: ControlHandler, limits: ControlLimits, log: Logger): void {
  const who = `${socket.remoteAddress}:${socket.remotePort}`;
  const decoder = new LineDecoder(limits.maxLineBytes ?? MAX_REQUEST_LINE);
  /** Parsed requests waiting for their turn; `subscribe` ends the list. */
  const pending: Array<ControlRequest | 'subscribe'> = [];
  let working = false;
  let closed = false;
  socket.setTimeout(limits.idleMs, () => {
    log.debug({ peer: who }, 'closing idle control connection');
    socket.destroy();
  });
  let unsubscribe: (() => void) | null = null;
  socket.on('close', () => {
    closed = true;
    unsubscribe?.();
  });
  const fail = (why: string) => {
    if (closed) return;
    closed = true;
    pending.length = 0;
    log.warn({ peer: who }, `closing control connection: ${why}`);
    socket.end(encodeMessage({ type: 'ERROR', error: why }));
    setTimeout(() => socket.destroy(), 1000).unref();
  };
  const work = async () => {
    if (working) return;
    working = true;
    while (pending.length > 0 && !closed) {
      const req = pending.shift()!;
      if (req === 'subscribe') {
        startSubscription(socket, who, handler, log, fail, (u) => (unsubscribe = u), () => closed);
        break;
      }
      let res: ControlResponse;
      try {
        res = await handler.handle(req);
      } catch (err) {
        log.error({ peer: who, err: (err as Error).message }, 'control request failed');
        res = { type: 'ERROR', error: 'internal error' };
      }
      if (closed) break;
      // A client that does not read its answers gets no more until it does.
      if (!socket.write(encodeMessage(res))) await new Promise<void>((resolve) => (socket.once('drain', resolve), socket.once('close', resolve)));
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (!closed && pending.length < PAUSE_AT && socket.isPaused() && !pending.includes('subscribe')) socket.resume();
    }
    working = false;
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
      if (pending.length >= MAX_PIPELINED) return fail(`more than ${MAX_PIPELINED} requests waiting for their answers`);
      if (req.type === 'subscribe') {
        // The last request on its connection: from here on the server talks, the client listens.
        socket.off('data', onData);
        pending.push('subscribe');
        break;
      }
      pending.push(req);
    }
    if (pending.length >= PAUSE_AT) socket.pause();
    void work();
  };
  socket.on('data', onData);
  onData(first);
}

function startSubscription(
  socket: Socket,
  who: string,
  handler: ControlHandler,
  log: Logger,
  fail: (why: string) => void,
  setUnsubscribe: (u: () => void) => void,
  isClosed: () => boolean,
): void {
  if (isClosed()) return;
  if (!handler.subscribe) return fail('subscribe is not supported by this node');
  let lastWrite = Date.now();
  const sub: Subscriber = {
    who,
    send: (msg) => {
      // destroyed: cut off below, its 'close' (which unsubscribes) not yet delivered.
      if (isClosed() || socket.destroyed) return;
      if (socket.writableLength > MAX_SUBSCRIBER_BACKLOG) {
        log.warn({ peer: who }, 'dropping a subscriber that does not read its events');
        socket.destroy();
        return;
      }
      lastWrite = Date.now();
      socket.write(encodeMessage(msg));
    },
  };
  const started = handler.subscribe(sub);
  if ('refused' in started) return fail(started.refused);
  const heartbeat = setInterval(() => {
    if (Date.now() - lastWrite >= SUBSCRIPTION_HEARTBEAT_MS - 50) sub.send({ type: 'HEARTBEAT' });
  }, SUBSCRIPTION_HEARTBEAT_MS / 3);
  heartbeat.unref();
  setUnsubscribe(() => {
    clearInterval(heartbeat);
    started.unsubscribe();
  });
  // No idle close on a subscription: the heartbeat keeps it honest instead. Whatever the
  // subscriber still sends is ignored, but a subscriber that sends a lot is cut off.
  socket.setTimeout(0);
  socket.resume(); // reading again (a pipelined burst may have paused it): the client's close must be seen
  let ignored = 0;
  socket.on('data', (chunk: Buffer) => {
    ignored += chunk.length;
    if (ignored > 64 * 1024) fail('requests after subscribe are not allowed');
  });
  sub.send(started.snapshot);
}
