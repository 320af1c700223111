/**
 * The one error class of the package, with a stable `code`.
 * @module
 */
import type { ExecutionRecord } from './types.js';

/** Stable error codes. */
export type ComfyErrorCode =
  /** The server answered with an unexpected HTTP status. */
  | 'http'
  /** The request never got an answer (network down, refused, aborted). */
  | 'network'
  /** `POST /prompt` refused the workflow (validation); nothing was queued. */
  | 'validation'
  /** The prompt ran and a node raised. */
  | 'execution_failed'
  /** The prompt was interrupted. */
  | 'interrupted'
  /** The server no longer knows the prompt (restart, deleted). */
  | 'lost'
  /** A wait deadline passed (`queue`, `stall` or `total`). */
  | 'timeout'
  /** The client was closed. */
  | 'closed'
  /** A caller passed something unusable. */
  | 'invalid_argument';

/** Every error this package throws or rejects with. */
export class ComfyError extends Error {
  /** Stable code. */
  readonly code: ComfyErrorCode;
  /** HTTP status, for `http` and `validation`. */
  readonly status?: number;
  /** The server's answer body (parsed JSON when it was JSON), for `http` and `validation`. */
  readonly body?: unknown;
  /** The prompt's record, for `execution_failed`, `interrupted` and `lost`. */
  readonly record?: ExecutionRecord;
  /** Which deadline passed, for `timeout`. */
  readonly deadline?: 'queue' | 'stall' | 'total';

  /** An error with a code, a message and optional details. */
  constructor(
    code: ComfyErrorCode,
    message: string,
    details: {
      status?: number;
      body?: unknown;
      record?: ExecutionRecord;
      deadline?: 'queue' | 'stall' | 'total';
      cause?: unknown;
    } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'ComfyError';
    this.code = code;
    if (details.status !== undefined) this.status = details.status;
    if (details.body !== undefined) this.body = details.body;
    if (details.record !== undefined) this.record = details.record;
    if (details.deadline !== undefined) this.deadline = details.deadline;
  }
}
