// Typed errors of the language-model layer. `lm/` knows nothing of HTTP, so these carry a code only:
// turning a code into a status is the business of the layer that answers clients. Every message names
// the file, tensor or argument concerned, because "invalid config" alone sends people hunting.

export type LmErrorCode =
  | 'file_missing'
  | 'file_corrupt'
  | 'config_invalid'
  | 'unsupported_dtype'
  | 'unsupported_model'
  | 'tensor_missing'
  | 'bad_argument';

export class LmError extends Error {
  constructor(
    public code: LmErrorCode | (string & {}),
    message: string,
    public details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'LmError';
  }
}

// Reasons carried in `details.reason` of a 'bad_argument', for callers that answer each differently.
/** The prompt (prefix + tokens) is longer than the model's context. */
export const CONTEXT_LENGTH_EXCEEDED = 'context_length_exceeded';
/** The engine is closing and takes no new work. */
export const ENGINE_CLOSED = 'engine_closed';

export const isLmError = (e: unknown, code?: string): e is LmError =>
  e instanceof LmError && (code === undefined || e.code === code);
