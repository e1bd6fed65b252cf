// WGSL sources live in shaders/*.wgsl and are embedded at build time (src/gpu/shaders.gen.ts).
// A source may contain `{{NAME}}` placeholders, filled here: this is how kernels get their element
// type, workgroup size, unrolled tiles or fused expression. Shapes never go here (they go in
// uniforms), so a run creates few pipelines.
import { SHADERS } from './shaders.gen.js';

export type Defines = Readonly<Record<string, string | number | boolean>>;

export function shaderSource(name: string, defines: Defines = {}): string {
  const src = SHADERS[name];
  if (src === undefined) throw new Error(`unknown shader "${name}" (no shaders/${name}.wgsl)`);
  return fillTemplate(src, defines, `shaders/${name}.wgsl`);
}

export function fillTemplate(src: string, defines: Defines, where: string): string {
  return src.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    const v = defines[key];
    if (v === undefined) throw new Error(`${where}: placeholder {{${key}}} has no value`);
    return String(v);
  });
}

/** Common WGSL prelude: how a kernel turns a 2-D grid of workgroups into one linear index. */
export const LINEAR_ID = /* wgsl */ `
fn linear_wg(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }
`;
