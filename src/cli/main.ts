#!/usr/bin/env node
// `cliptune <command> [options]`: one entry point; each command lives in its own module and is
// loaded only when asked for, so `cliptune tokenize` does not start a GPU device.

const COMMANDS: Record<string, { summary: string; load: () => Promise<(argv: string[]) => Promise<number>> }> = {
  doctor: {
    summary: 'show the WebGPU adapter, run a kernel self-test and a short matmul benchmark',
    load: async () => (await import('./doctor.js')).doctorCommand,
  },
  embed: {
    summary: 'image and text embeddings of a CLIP checkpoint, written as safetensors',
    load: async () => (await import('./embed.js')).embedCommand,
  },
  zeroshot: {
    summary: 'zero-shot classification of images with class-name prompts',
    load: async () => (await import('./zeroshot.js')).zeroshotCommand,
  },
  train: {
    summary: 'train an adaptation method (zeroshot, linear-probe, coop, prolip, ivlp, vpt, prompt-ot, dapt, rpp) and report its accuracy',
    load: async () => (await import('./train.js')).trainCommand,
  },
  eval: {
    summary: 'evaluate a trained run on a dataset folder (base / novel / all classes)',
    load: async () => (await import('./eval.js')).evalCommand,
  },
  demo: {
    summary: 'every method end to end on the embedded world with the shipped world CLIP: table, per-phase times, report (npm start)',
    load: async () => (await import('./demo.js')).demoCommand,
  },
  report: { summary: 'an HTML page and a Markdown summary over trained runs (loss curves, accuracy mean ± std over seeds)', load: async () => (await import('./report.js')).reportCommand },
  iimm: { summary: 'the inter/intra-modal measure of a dataset, and gain/forgetting predicted from earlier runs', load: async () => (await import('./iimm.js')).iimmCommand },
  tokenize: {
    summary: "print CLIP token ids of texts as JSON arrays",
    load: async () => (await import('./tokenize.js')).tokenizeCommand,
  },
  world: {
    summary: "write a dataset of the synthetic shapes world (class folders + CoOp split JSON)",
    load: async () => (await import('./world.js')).worldCommand,
  },
  pretrain: {
    summary: 'pretrain the small world CLIP from scratch (contrastive, on the synthetic world)',
    load: async () => (await import('./pretrain.js')).pretrainCommand,
  },
  download: {
    summary: 'fetch a Hugging Face CLIP model folder (needs network access)',
    load: async () => (await import('./download.js')).downloadCommand,
  },
  convert: {
    summary: "convert OpenAI/PyTorch .pt checkpoints to safetensors (no pickle code is run)",
    load: async () => (await import('./convert.js')).convertCommand,
  },
};

export const USAGE = `usage: cliptune <command> [options]

commands:
${Object.entries(COMMANDS)
  .map(([k, v]) => `  ${k.padEnd(10)} ${v.summary}`)
  .join('\n')}

Run \`cliptune <command> --help\` for a command's options.
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd) {
    process.stderr.write(USAGE);
    return 2;
  }
  if (cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const entry = COMMANDS[cmd];
  if (!entry) {
    process.stderr.write(`cliptune: unknown command "${cmd}"\n\n${USAGE}`);
    return 2;
  }
  const run = await entry.load();
  return run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const e = err as Error;
    process.stderr.write(`cliptune: ${e?.message ?? String(err)}\n`);
    if (process.env.CLIPTUNE_DEBUG) process.stderr.write(`${e?.stack ?? ''}\n`);
    process.exitCode = 1;
  },
);
