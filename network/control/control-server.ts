import type { Socket } from 'node:net';
import type { Logger, WarnLimiter } from '../util/log.js';
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
  /** The remote address, which subscriber slots are shared by. */
  readonly address: string;
  send(msg: ControlResponse): void;
  /** End the subscription, telling the subscriber why. */
  close(why: string): void;
}

/** An idle subscription gets a HEARTBEAT this often, so both ends notice a dead link. */
export const SUBSCRIPTION_HEARTBEAT_MS = 15_000;
/** A subscriber that lets this much pile up unread is too slow to keep. */
export const MAX_SUBSCRIBER_BACKLOG = 1024 * 1024;

export interface ControlLimits {
  /** A control connection that completes no request for this long is closed (bytes that never end a line do not count). */
  idleMs: number;
  /** A request line must be complete this long after its first byte arrived (slow senders hold a slot otherwise). */
  lineDeadlineMs?: number;
  maxLineBytes?: number;
  /** Where warnings about the client go, at a bounded rate; the logger when absent. */
  warnings?: WarnLimiter;
}

/** The default of ControlLimits.lineDeadlineMs. */
export const LINE_DEADLINE_MS = 10_000;

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
  let unsubscribe: (() => void) | null = null;
  // Deadlines: the next request within idleMs of the last one answered, a started line
  // completed within lineDeadlineMs. Any byte would do for socket.setTimeout; not here.
  const lineDeadlineMs = limits.lineDeadlineMs ?? LINE_DEADLINE_MS;
  let lastRequest = Date.now();
  let lineStarted = 0;
  let deadlines: NodeJS.Timeout | null = null;
  const checkDeadlines = () => {
    deadlines = null;
    if (closed || unsubscribe) return;
    const now = Date.now();
    // While requests wait for their answers the client is not the one to blame (and not read).
    const busy = working || pending.length > 0;
    if (!busy && lineStarted > 0 && now - lineStarted >= lineDeadlineMs) return fail(`request line not completed within ${lineDeadlineMs} ms`);
    if (!busy && now - lastRequest >= limits.idleMs) {
      log.debug({ peer: who }, 'closing idle control connection');
      closed = true;
      return void socket.destroy();
    }
    armDeadlines();
  };
  const armDeadlines = () => {
    if (deadlines) clearTimeout(deadlines);
    const now = Date.now();
    const next = Math.min(lastRequest + limits.idleMs, lineStarted > 0 ? lineStarted + lineDeadlineMs : Infinity);
    deadlines = setTimeout(checkDeadlines, Math.max(10, next - now));
    deadlines.unref();
  };
  socket.on('close', () => {
    closed = true;
    if (deadlines) clearTimeout(deadlines);
    unsubscribe?.();
  });
  const warn = (why: string) => (limits.warnings ? limits.warnings.warn({ peer: who }, why) : log.warn({ peer: who }, why));
  const fail = (why: string) => {
    if (closed) return;
    closed = true;
    pending.length = 0;
    warn(`closing control connection: ${why}`);
    socket.end(encodeMessage({ type: 'ERROR', error: why }));
    setTimeout(() => socket.destroy(), 1000).unref();
  };
  const work = async () => {
    if (working) return;
    working = true;
    while (pending.length > 0 && !closed) {
      const req = pending.shift()!;
      if (req === 'subscribe') {
        if (deadlines) clearTimeout(deadlines);
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
      lastRequest = Date.now();
      if (!closed && pending.length < PAUSE_AT && socket.isPaused() && !pending.includes('subscribe')) {
        socket.resume();
        // A line cut short by our own pause gets its full time from when we read again.
        if (lineStarted > 0) lineStarted = Date.now();
      }
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
    lineStarted = decoder.bufferedBytes === 0 ? 0 : lines.length > 0 || lineStarted === 0 ? Date.now() : lineStarted;
    for (const line of lines) {
      if (line.trim() === '') continue; // allowed, but keeps nothing alive
      lastRequest = Date.now();
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
    if (!closed && !pending.includes('subscribe')) armDeadlines();
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
    address: socket.remoteAddress ?? '?',
    close: (why) => fail(why),
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
