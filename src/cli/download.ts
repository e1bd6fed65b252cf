// `cliptune download <repo>`: fetches a Hugging Face CLIP model folder (model.safetensors,
// config.json, tokenizer files) when online. Each file is written to a temporary name and renamed
// when complete, so an interrupted download never leaves a truncated file under the final name.
import { parseArgs } from 'node:util';
import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';

const USAGE = `usage: cliptune download <repo> [--out DIR] [--revision REV] [--endpoint URL]

Downloads a Hugging Face CLIP model folder, e.g. openai/clip-vit-base-patch16, into DIR
(default: weights/<repo name>): model.safetensors, config.json and the tokenizer files.
Env HF_ENDPOINT or --endpoint selects a mirror; HF_TOKEN is sent if set.
`;

const FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json'];
const REQUIRED = new Set(['config.json', 'model.safetensors']);

export async function downloadCommand(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { out: { type: 'string' }, revision: { type: 'string' }, endpoint: { type: 'string' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (e) {
    process.stderr.write(`cliptune download: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const repo = positionals[0];
  if (!repo || positionals.length > 1 || !/^[\w.-]+\/[\w.-]+$/.test(repo)) {
    process.stderr.write(`cliptune download: expected one repository name like openai/clip-vit-base-patch16\n${USAGE}`);
    return 2;
  }
  const endpoint = ((values.endpoint as string | undefined) ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/$/, '');
  const rev = (values.revision as string | undefined) ?? 'main';
  const out = (values.out as string | undefined) ?? join('weights', repo.split('/')[1]!);
  mkdirSync(out, { recursive: true });
  const headers: Record<string, string> = process.env.HF_TOKEN ? { authorization: `Bearer ${process.env.HF_TOKEN}` } : {};
  for (const f of FILES) {
    const url = `${endpoint}/${repo}/resolve/${rev}/${f}`;
    let res: Response;
    try {
      res = await fetch(url, { headers });
    } catch (e) {
      process.stderr.write(
        `cliptune download: cannot reach ${endpoint} (${(e as Error).cause ?? (e as Error).message}). This machine may be offline; ` +
          `download the folder elsewhere and pass it to --weights (see weights/README.md).\n`,
      );
      return 1;
    }
    if (res.status === 404 && !REQUIRED.has(f)) continue;
    if (!res.ok || !res.body) {
      process.stderr.write(`cliptune download: ${url}: HTTP ${res.status}${res.status === 401 ? ' (private or gated repo: set HF_TOKEN)' : ''}\n`);
      return 1;
    }
    const dst = join(out, f);
    const tmp = `${dst}.tmp-${process.pid}`;
    try {
      await res.body.pipeTo(Writable.toWeb(createWriteStream(tmp)));
      renameSync(tmp, dst);
    } catch (e) {
      if (existsSync(tmp)) rmSync(tmp);
      process.stderr.write(`cliptune download: ${url}: ${(e as Error).message}\n`);
      return 1;
    }
    process.stdout.write(`${dst}\n`);
  }
  return 0;
}
