// Standard CLIP architectures and seeded random weights (benchmarks, tests, pretraining from scratch).
import { clipTensorSpec, type ClipConfig } from './checkpoint.js';
import { Rng } from './rng.js';

function vit(resolution: number, patchSize: number, width: number, layers: number, embedDim: number, textWidth: number): ClipConfig {
  return {
    embedDim,
    image: { resolution, patchSize, width, layers, heads: width / 64, mlpHidden: 4 * width, eps: 1e-5 },
    text: { contextLength: 77, vocabSize: 49408, width: textWidth, layers: 12, heads: textWidth / 64, mlpHidden: 4 * textWidth, eps: 1e-5 },
    activation: 'quick_gelu',
    activationSource: 'option',
  };
}

/** OpenAI's released ViT shapes. */
export const CLIP_CONFIGS: Readonly<Record<string, ClipConfig>> = {
  'ViT-B/32': vit(224, 32, 768, 12, 512, 512),
  'ViT-B/16': vit(224, 16, 768, 12, 512, 512),
  'ViT-L/14': vit(224, 14, 1024, 24, 768, 768),
};

/**
 * Weights drawn as OpenAI's CLIP.initialize_parameters does (normal with its per-tensor stds;
 * LayerNorms at 1/0; biases 0; logit_scale = ln(1/0.07)), from a seeded generator.
 */
export function randomClipWeights(c: ClipConfig, seed = 0): Map<string, Float32Array> {
  // A local xorshift128 stream seeded from the project Rng: 151M normals for ViT-B/32 must not take
  // minutes, and a method call per draw dominated the cost.
  const seeder = new Rng(seed);
  let x = seeder.nextU32() | 1;
  let y = seeder.nextU32();
  let z = seeder.nextU32();
  let w = seeder.nextU32();
  const u32 = () => {
    const t = x ^ (x << 11);
    x = y;
    y = z;
    z = w;
    w = (w ^ (w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    return w;
  };
  const out = new Map<string, Float32Array>();
  const normal = (n: number, std: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      // Box-Muller: two normals per pair of uniforms in (0, 1].
      const u = (u32() + 1) / 4294967296;
      const v = u32() / 4294967296;
      const r = Math.sqrt(-2 * Math.log(u)) * std;
      a[i] = r * Math.cos(2 * Math.PI * v);
      if (i + 1 < n) a[i + 1] = r * Math.sin(2 * Math.PI * v);
    }
    return a;
  };
  for (const spec of clipTensorSpec(c)) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const name = spec.name;
    const tower = name.startsWith('visual.') ? c.image : c.text;
    const w = tower.width;
    const layers = tower.layers;
    let data: Float32Array;
    if (name === 'logit_scale') data = Float32Array.of(Math.log(1 / 0.07));
    else if (/(^|\.)ln_\w+\.weight$/.test(name)) data = new Float32Array(n).fill(1);
    else if (/bias$/.test(name)) data = new Float32Array(n);
    else if (name === 'token_embedding.weight') data = normal(n, 0.02);
    else if (name === 'positional_embedding') data = normal(n, 0.01);
    else if (name === 'visual.class_embedding' || name === 'visual.positional_embedding' || name === 'visual.proj') data = normal(n, w ** -0.5);
    else if (name === 'visual.conv1.weight') data = normal(n, (3 * spec.shape[2]! * spec.shape[3]!) ** -0.5);
    else if (name === 'text_projection') data = normal(n, w ** -0.5);
    else if (/attn\.in_proj_weight$/.test(name)) data = normal(n, w ** -0.5);
    else if (/attn\.out_proj\.weight$/.test(name)) data = normal(n, w ** -0.5 * (2 * layers) ** -0.5);
    else if (/mlp\.c_fc\.weight$/.test(name)) data = normal(n, (2 * w) ** -0.5);
    else if (/mlp\.c_proj\.weight$/.test(name)) data = normal(n, w ** -0.5 * (2 * layers) ** -0.5);
    else throw new Error(`randomClipWeights: no init rule for ${name}`);
    out.set(name, data);
  }
  return out;
}
