// `cliptune world --out DIR ...`: writes a synthetic classification dataset (see
// src/data/world/write-node.ts for the layout).
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DOMAINS, isDomain, type Domain } from '../data/world/attributes.js';
import { NUM_BASE, NUM_CLASSES, WORLD_CLASS_INFO, parseClassSelection } from '../data/world/classes.js';
import { encodePng } from '../data/world/png-node.js';
import { contactSheet } from '../data/world/preview.js';
import { DEFAULT_IMAGE_SIZE } from '../data/world/generate.js';
import { DEFAULT_COUNTS, splitPerClass, writeWorldDataset, type SplitCounts } from '../data/world/write-node.js';

export const WORLD_USAGE = `usage: cliptune world --out DIR [--classes all|base|novel|LIST] [--domain NAME]
                      [--per-class N | --train N --val N --test N] [--size PX] [--seed S] [--force]
       cliptune world --preview FILE.png [--classes ...] [--domain NAME|all] [--size PX] [--seed S]
       cliptune world --list

Writes a synthetic "colour shape" classification dataset (${NUM_CLASSES} classes) to DIR:
images/<class>/<nnnn>.png, split_zhou_World.json (CoOp's split format), classnames.txt and
world.json. The same options always give the same images.

  --out DIR        output directory (created; must be empty or absent unless --force)
  --classes SPEC   all (default), base (labels 0-${NUM_BASE - 1}), novel (labels ${NUM_BASE}-${NUM_CLASSES - 1}), or a comma
                   list of names (red_circle or "red circle"), labels and ranges (0-11);
                   the chosen classes are relabelled 0..n-1 in world label order
  --domain NAME    ${DOMAINS.join(', ')} (default plain)
  --per-class N    N images per class, split 50% train / 20% val / 30% test as CoOp does
  --train N --val N --test N
                   images per class in each split (defaults ${DEFAULT_COUNTS.train} / ${DEFAULT_COUNTS.val} / ${DEFAULT_COUNTS.test})
  --size PX        image width and height (default ${DEFAULT_IMAGE_SIZE}; 8..1024)
  --seed S         non-negative integer (default 0)
  --force          replace a non-empty DIR
  --preview FILE   write a contact sheet (first training image of each class, every domain
                   unless --domain names one) as a PNG instead of a dataset
  --list           print the classes (label, name, base/novel) and domains, and exit
`;

export interface CommandIO {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

class UsageError extends Error {}

function intArg(value: string | undefined, name: string, lo: number, hi: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value.trim())) throw new UsageError(`--${name} must be a non-negative integer, got ${JSON.stringify(value)}`);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < lo || n > hi) throw new UsageError(`--${name} must be in ${lo}..${hi}, got ${value}`);
  return n;
}

/** Runs `cliptune world`; returns 0, or 2 after a message on stderr (bad arguments, existing output, write errors). */
export async function worldCommand(argv: string[], io: CommandIO = process): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        out: { type: 'string', short: 'o' },
        classes: { type: 'string' },
        domain: { type: 'string' },
        'per-class': { type: 'string' },
        train: { type: 'string' },
        val: { type: 'string' },
        test: { type: 'string' },
        size: { type: 'string' },
        seed: { type: 'string' },
        force: { type: 'boolean', default: false },
        list: { type: 'boolean', default: false },
        preview: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (e) {
    return fail(io, new UsageError((e as Error).message));
  }
  try {
    if (values.help) {
      io.stdout.write(WORLD_USAGE);
      return 0;
    }
    if (values.list) {
      const lines = WORLD_CLASS_INFO.map((c) => `${String(c.index).padStart(2)}  ${c.folder.padEnd(16)} ${c.half}`);
      io.stdout.write(`${lines.join('\n')}\ndomains: ${DOMAINS.join(', ')}\n`);
      return 0;
    }
    if (values.preview !== undefined) {
      if (values.domain !== undefined && values.domain !== 'all' && !isDomain(values.domain)) {
        throw new UsageError(`unknown domain ${JSON.stringify(values.domain)}; valid: ${DOMAINS.join(', ')}, all`);
      }
      const domains = values.domain === undefined || values.domain === 'all' ? [...DOMAINS] : [values.domain as Domain];
      const sheet = contactSheet({
        seed: intArg(values.seed, 'seed', 0, Number.MAX_SAFE_INTEGER) ?? 0,
        classes: parseClassSelection(values.classes ?? 'all'),
        domains,
        size: intArg(values.size, 'size', 8, 1024) ?? DEFAULT_IMAGE_SIZE,
      });
      writeFileSync(values.preview, encodePng(sheet));
      io.stdout.write(`wrote ${values.preview} (${sheet.width}x${sheet.height}; domains: ${domains.join(', ')})\n`);
      return 0;
    }
    if (!values.out) throw new UsageError('--out DIR is required');
    if (values.domain !== undefined && !isDomain(values.domain)) {
      throw new UsageError(`unknown domain ${JSON.stringify(values.domain)}; valid: ${DOMAINS.join(', ')}`);
    }
    const perClassN = intArg(values['per-class'], 'per-class', 1, 3_000_000);
    const split: Partial<SplitCounts> = {};
    for (const s of ['train', 'val', 'test'] as const) {
      const n = intArg(values[s], s, 0, 1_000_000);
      if (n !== undefined) split[s] = n;
    }
    if (perClassN !== undefined && Object.keys(split).length > 0) {
      throw new UsageError('--per-class cannot be combined with --train/--val/--test');
    }
    const counts = perClassN !== undefined ? splitPerClass(perClassN) : split;
    const size = intArg(values.size, 'size', 8, 1024);
    const seed = intArg(values.seed, 'seed', 0, Number.MAX_SAFE_INTEGER);

    let lastReport = performance.now();
    const t0 = lastReport;
    const result = await writeWorldDataset({
      out: values.out,
      classes: values.classes ?? 'all',
      domain: values.domain as Domain | undefined,
      counts,
      size,
      seed,
      force: values.force,
      onProgress: (done, total) => {
        const now = performance.now();
        if (now - lastReport >= 1000 && done < total) {
          lastReport = now;
          const rate = done / ((now - t0) / 1000);
          io.stderr.write(`  ${done}/${total} images (${Math.floor((100 * done) / total)}%, ${rate.toFixed(0)}/s, ~${((total - done) / rate).toFixed(0)} s left)\n`);
        }
      },
    });
    const pc = result.perClass;
    io.stdout.write(
      `wrote ${result.images} images to ${result.dir}: ${result.classes.length} classes x ` +
        `${pc.train} train / ${pc.val} val / ${pc.test} test, domain ${result.domain}, ${result.size}x${result.size}, seed ${result.seed}\n` +
        `  ${(result.bytes / 1e6).toFixed(2)} MB in ${result.seconds.toFixed(2)} s (${(result.images / result.seconds).toFixed(0)} images/s); ` +
        `pixels sha256 ${result.pixelsSha256.slice(0, 16)}\n`,
    );
    return 0;
  } catch (e) {
    return fail(io, e as Error);
  }
}

function fail(io: CommandIO, e: Error): number {
  const usage = e instanceof UsageError ? `${WORLD_USAGE.split('\n')[0]}\n` : '';
  io.stderr.write(`cliptune world: ${e.message}\n${usage}`);
  return 2;
}
