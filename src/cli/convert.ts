// `cliptune convert IN.pt OUT.safetensors [--f32]`: reads the archive's tensor storages without
// executing any pickle code and writes them atomically as safetensors.
import { parseArgs } from 'node:util';
import { convertPtToSafetensors } from '../io/torch-pt-node.js';
import { checkInputFile, checkOutPath } from './clip-inputs.js';

const USAGE = `usage: cliptune convert IN.pt OUT.safetensors [--f32]

Converts a PyTorch checkpoint (torch.save zip, or OpenAI's released TorchScript archives as
downloaded by clip.load) to safetensors. No pickle code is executed: only tensor storages and
names are read. Tensors keep their stored dtype (OpenAI's are fp16) unless --f32 is given.
`;

export async function convertCommand(argv: string[]): Promise<number> {
  let values: { f32?: boolean; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { f32: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (e) {
    process.stderr.write(`cliptune convert: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length !== 2) {
    process.stderr.write(`cliptune convert: expected IN.pt and OUT.safetensors\n${USAGE}`);
    return 2;
  }
  const [src, dst] = positionals as [string, string];
  try {
    checkInputFile(src, 'IN.pt');
    checkOutPath(dst, 'OUT.safetensors');
    const r = await convertPtToSafetensors(src, dst, { dtype: values.f32 ? 'f32' : 'keep' });
    process.stdout.write(`wrote ${dst}: ${r.tensors} tensors from a ${r.kind} archive (${Object.entries(r.dtypes).map(([k, v]) => `${v} ${k}`).join(', ')})\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`cliptune convert: ${(e as Error).message}\n`);
    return 1;
  }
}
