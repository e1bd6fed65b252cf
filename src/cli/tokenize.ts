// `cliptune tokenize TEXT... [--context N] [--truncate] [--vocab PATH] [--pad-id N]`: prints each
// text's padded CLIP token ids as a JSON array, one line per text.
import { parseArgs } from 'node:util';
import { loadClipTokenizer } from '../clip/tokenizer-node.js';

export const TOKENIZE_USAGE = `usage: cliptune tokenize TEXT... [--context N] [--truncate] [--vocab PATH] [--pad-id N]

Prints each TEXT's CLIP token ids as a JSON array, one line per TEXT: start token, the
text's ids, end token, then padding up to the context length. Put -- before a TEXT that
starts with '-'.

  --context N    row length (default 77, CLIP's)
  --truncate     cut a text that does not fit (its last token becomes the end token)
                 instead of failing
  --vocab PATH   OpenAI's bpe_simple_vocab_16e6.txt(.gz), Hugging Face's tokenizer.json or
                 vocab.json (merges.txt beside it), or a folder holding one of them
                 (default: the OpenAI vocabulary shipped in weights/)
  --pad-id N     padding id (default 0 as OpenAI; Hugging Face's CLIP pads with 49407)
`;

/** Where the command writes; the process's streams unless a caller (a test) passes its own. */
export interface CommandIO {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

/** A mistake in the command line itself: reported with the usage line. */
class UsageError extends Error {}

function intArg(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^-?\d+$/.test(value)) throw new UsageError(`--${name} must be an integer, got ${JSON.stringify(value)}`);
  return Number(value);
}

/**
 * Runs `cliptune tokenize`; `argv` holds the arguments after the word "tokenize".
 * Returns the exit code: 0, or 2 after a message on stderr (bad arguments, a text that is empty or
 * too long, an unreadable vocabulary).
 */
export async function tokenizeCommand(argv: string[], io: CommandIO = process): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        context: { type: 'string' },
        truncate: { type: 'boolean', default: false },
        vocab: { type: 'string' },
        'pad-id': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    // node:util's parseArgs errors (unknown option, missing value) are usage errors too.
    return fail(io, new UsageError((e as Error).message));
  }
  try {
    const { values, positionals } = parsed;
    if (values.help) {
      io.stdout.write(TOKENIZE_USAGE);
      return 0;
    }
    if (positionals.length === 0) throw new UsageError('no TEXT given');
    const contextLength = intArg(values.context, 'context', 77);
    if (contextLength < 1) throw new UsageError(`--context must be at least 1, got ${contextLength}`);
    const padId = intArg(values['pad-id'], 'pad-id', 0);
    const tokenizer = await loadClipTokenizer(values.vocab);
    const rows = tokenizer.tokenize(positionals, { contextLength, truncate: values.truncate, padId, rejectEmpty: true });
    io.stdout.write(rows.map((row) => JSON.stringify(Array.from(row))).join('\n') + '\n');
    return 0;
  } catch (e) {
    return fail(io, e as Error);
  }
}

function fail(io: CommandIO, e: Error): number {
  const usage = e instanceof UsageError ? `${TOKENIZE_USAGE.split('\n')[0]}\n` : '';
  io.stderr.write(`cliptune tokenize: ${e.message}\n${usage}`);
  return 2;
}
