// Errors [IM-6]: refusals by the server carry one of the spec's codes.

/** The error codes of spec §6.1 [IM-6.1-1]. */
export const ErrorCode = {
  BadPayload: "bad_payload",
  BadRequest: "bad_request",
  UnknownType: "unknown_type",
  TooLarge: "too_large",
  NotAuthorized: "not_authorized",
  UnknownUser: "unknown_user",
  CmidConflict: "cmid_conflict",
  NotMember: "not_member",
  UnknownMethod: "unknown_method",
  UnknownGroup: "unknown_group",
  Forbidden: "forbidden",
  Muted: "muted",
  Unavailable: "unavailable",
  Overloaded: "overloaded",
  /** Over the sender's rate limit [IM-1.3-6]: retry after MqimError.retryAfterMs. */
  RateLimited: "rate_limited",
  Blocked: "blocked",
  NotFound: "not_found",
  NotAllowed: "not_allowed",
  UnsupportedMedia: "unsupported_media",
  /** The server's moderation refused the content [IM-18]; sending it as is fails again. */
  ContentRefused: "content_refused",
  Internal: "internal",
} as const;

/** A spec error code; unknown codes from newer servers are plain strings. */
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** MQTT 5 PUBACK reason codes of the error table [IM-6.1-1]. */
export const Reason = {
  Success: 0x00,
  Unspecified: 0x80,
  ImplementationSpecific: 0x83,
  NotAuthorized: 0x87,
  QuotaExceeded: 0x97,
  PayloadFormatInvalid: 0x99,
} as const;

/** Retryable codes [IM-6.1-1]: the same request may be repeated later. */
const RETRYABLE = new Set<string>([ErrorCode.Unavailable, ErrorCode.Overloaded, ErrorCode.RateLimited, ErrorCode.Internal]);

/**
 * MqimError is a refusal by the server: a send or RPC request refused in its
 * PUBACK, an RPC answered with ok = false, or an HTTP error [IM-6]. `code` is
 * the spec's code (compare with ErrorCode.*); it is "" when the server gave
 * only a PUBACK reason code ([IM-4.4-4]).
 */
export class MqimError extends Error {
  override readonly name = "MqimError";
  /** The spec's error code, e.g. ErrorCode.UnknownUser. */
  readonly code: string;
  /** The MQTT 5 PUBACK reason code; 0 for RPC response errors. */
  readonly reason: number;
  /** The HTTP status of an HTTP error (upload); 0 otherwise. */
  readonly status: number;
  /** The server's text for people; never parse it. */
  readonly detail: string;
  /**
   * With rate_limited: how many milliseconds from the refusal a retry can
   * succeed (the server's retry_after_ms [IM-6.2-1]); 0 otherwise.
   */
  readonly retryAfterMs: number;

  constructor(code: string, detail = "", reason = 0, status = 0, retryAfterMs = 0) {
    const shown = code || `reason 0x${reason.toString(16).padStart(2, "0")}`;
    super(detail && detail !== code ? `mqim: ${shown}: ${detail}` : `mqim: ${shown}`);
    this.code = code;
    this.detail = detail;
    this.reason = reason;
    this.status = status;
    this.retryAfterMs = Number.isFinite(retryAfterMs) && retryAfterMs > 0 ? retryAfterMs : 0;
  }

  /**
   * retryable tells whether the same request may be repeated later:
   * unavailable, overloaded, rate_limited (after retryAfterMs) and internal
   * (a few times). Unknown codes are
   * final [IM-6.1-2]; with only a reason code, 0x80 and 0x97 are retryable.
   */
  get retryable(): boolean {
    if (this.code === "") return this.reason === Reason.Unspecified || this.reason === Reason.QuotaExceeded;
    return RETRYABLE.has(this.code);
  }
}

/** Why the client cannot go on, or why a call did not complete. */
export const ClientErrorCode = {
  /** CONNACK 0x86: bad user id or token; get a new token [IM-6.2-2]. */
  BadCredentials: "bad_credentials",
  /** CONNACK 0x85: the client id is connected for another user [IM-3.1-6]. */
  ClientIdInUse: "client_id_in_use",
  /** DISCONNECT 0x8E: another connection took the client id over [IM-6.2-2]. */
  TakenOver: "taken_over",
  /** The client was closed. */
  Closed: "closed",
  /** The call's timeout passed (its outcome may be unknown, see message). */
  Timeout: "timeout",
  /** The call's AbortSignal fired. */
  Aborted: "aborted",
  /** A subscription the client needs was refused. */
  SubscribeRefused: "subscribe_refused",
} as const;

/**
 * ClientError is a failure on the client's side or of the connection, not
 * a refusal with a spec code: see ClientErrorCode.
 */
export class ClientError extends Error {
  override readonly name = "ClientError";
  readonly code: string;
  /**
   * For a call that gave up (timeout, aborted): the failure of its last
   * attempt, e.g. an MqimError rate_limited it was waiting out, or the
   * lost connection; undefined if there was none.
   */
  readonly last: Error | undefined;
  constructor(code: string, message: string, options?: { cause?: unknown; last?: Error }) {
    super(`mqim: ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.last = options?.last;
  }
}

/** isCode reports whether err is an MqimError or ClientError with code. */
export function isCode(err: unknown, code: string): boolean {
  return (err instanceof MqimError || err instanceof ClientError) && err.code === code;
}
