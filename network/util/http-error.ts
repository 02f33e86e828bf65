import type { z } from 'zod';

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

/** The first zod issue as one line people can act on: `field "port": must be 1..65535`. */
export function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid';
  const where = issue.path.length > 0 ? `field "${issue.path.join('.')}"` : 'body';
  return `${where}: ${issue.message}`;
}

/** `value` checked against `schema`, or an HttpError 400 that says what is wrong (`what` names a value that is not the body). */
export function checkInput<S extends z.ZodType>(schema: S, value: unknown, what?: string): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new HttpError(400, what ? `${what}: ${r.error.issues[0]?.message ?? 'invalid'}` : describeIssue(r.error));
  return r.data;
}
