/**
 * Typed errors that cross the contract. Every failure the engine reports has a code a UI
 * can branch on and a message a human can act on ("what is wrong, where").
 */
export const ERROR_CODES = [
  'invalid-message', // the envelope or payload failed the schema
  'unknown-method',
  'not-found', // a model, dataset, run or tensor id that does not exist
  'bad-input', // a file or folder that is corrupt, truncated or unsupported
  'conflict', // e.g. starting a run that is already running
  'cancelled',
  'engine-crashed',
  'storage', // disk full, database locked or corrupt
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorPayload {
  code: ErrorCode;
  message: string;
  /** Machine-readable detail: schema issues, the offending path, … */
  details?: unknown;
}

export class LoupeError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;
  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = 'LoupeError';
    this.code = code;
    this.details = details;
  }
  toPayload(): ErrorPayload {
    return this.details === undefined ? { code: this.code, message: this.message } : { code: this.code, message: this.message, details: this.details };
  }
  static from(payload: ErrorPayload): LoupeError {
    return new LoupeError(payload.code, payload.message, payload.details);
  }
}

/** Turns anything thrown into a payload; unknown errors become `internal` with their message kept. */
export function toErrorPayload(err: unknown): ErrorPayload {
  if (err instanceof LoupeError) return err.toPayload();
  const e = err as { code?: string; message?: string };
  if (e?.code === 'ENOSPC') return { code: 'storage', message: `disk full: ${e.message ?? ''}`.trim() };
  if (e?.code === 'SQLITE_FULL') return { code: 'storage', message: `database or disk is full: ${e.message ?? ''}`.trim() };
  return { code: 'internal', message: e?.message ?? String(err) };
}
