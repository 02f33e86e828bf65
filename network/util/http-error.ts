/**
 * A request refused with an HTTP status and a reason people can act on. Both HTTP servers
 * (the bootstrap server and the dashboard's API) answer `{"error": message}` with `status`,
 * and send `headers` with it (Retry-After, Content-Range).
 */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}
