// Helpers every test folder may use.

/** Runs `fn` and returns the error message it throws (fails if it does not throw). */
export async function errorOf(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error, none was thrown');
}
