export type TokenizerErrorKind = 'too-long' | 'empty' | 'unknown-id' | 'bad-option' | 'bad-vocab';

/** Every failure of the tokenizer and its loaders; `kind` says which, `index` which text or id. */
export class TokenizerError extends Error {
  override name = 'TokenizerError';
  constructor(
    message: string,
    readonly kind: TokenizerErrorKind,
    /** Index of the offending text (tokenize) or id (decode). */
    readonly index?: number,
  ) {
    super(message);
  }
}
