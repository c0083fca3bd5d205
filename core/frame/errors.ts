// Framing errors are values, not exceptions: a peer controls every byte we
// decode, so a malformed frame is an expected outcome the caller must handle.

export type FrameErrorKind =
  | "truncated"
  | "oversized"
  | "unknown_type"
  | "bad_utf8"
  | "bad_value"
  | "trailing_bytes";

export interface FrameError {
  kind: FrameErrorKind;
  /** A human sentence naming the message, field and offset where useful. */
  message: string;
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: FrameError };

export const FRAME_ERROR_KINDS: readonly FrameErrorKind[] = [
  "truncated",
  "oversized",
  "unknown_type",
  "bad_utf8",
  "bad_value",
  "trailing_bytes",
];
