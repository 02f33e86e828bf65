/**
 * The dashboard as a library: an Express + EJS + socket.io server driven by a Node (see
 * server.ts), its REST API (api.ts, described by openapi.ts from contract.ts) and its live
 * events (live.ts). The programs that start it live in cli/.
 */
export { WebServer, DEFAULT_HTTP_HOST, WARN_PER_MINUTE, type WebServerInit } from './server.js';
export { isLoopbackHost } from './auth.js';
