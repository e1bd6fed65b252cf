// Packs a kernel's uniform block. WGSL uniform structs here use only 4-byte scalars and
// vec4<u32> arrays (16-byte aligned), so a flat word array with explicit padding is enough.

export class Uniforms {
  private words = new Uint32Array(64);
  private f32 = new Float32Array(this.words.buffer);
  private i32 = new Int32Array(this.words.buffer);
  private n = 0;

  u32(...vs: number[]): this {
    for (const v of vs) this.words[this.n++] = v >>> 0;
    return this;
  }
  i32v(...vs: number[]): this {
    for (const v of vs) this.i32[this.n++] = v | 0;
    return this;
  }
  f32v(...vs: number[]): this {
    for (const v of vs) this.f32[this.n++] = v;
    return this;
  }
  /** Pads to a 16-byte boundary, then writes `vs` as ceil(len/4) vec4<u32> (zero-filled to `slots`). */
  vec4u(vs: readonly number[], slots = Math.ceil(vs.length / 4)): this {
    this.n = Math.ceil(this.n / 4) * 4;
    for (let i = 0; i < slots * 4; i++) this.words[this.n++] = i < vs.length ? vs[i]! >>> 0 : 0;
    return this;
  }
  done(): Uint32Array {
    const len = Math.max(4, Math.ceil(this.n / 4) * 4);
    return this.words.slice(0, len);
  }
}
