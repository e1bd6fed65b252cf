// Shared helpers for the io tests: fixture paths, a scratch directory, and a
// minimal stored-zip builder (to craft hostile .pt files in the tests).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from '../../src/io/zip.js';

/** Repository root (tests run from dist/test/io/). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const GOLDEN = join(ROOT, 'test/fixtures/golden/tiny-vit');
export const PT = join(ROOT, 'test/fixtures/pt');

export function scratchDir(): string {
  return mkdtempSync(join(tmpdir(), 'cliptune-io-'));
}

export { errorOf } from '../common.js';

/** Builds a zip with stored (uncompressed) entries, as torch.save writes them. */
export function makeZip(files: Record<string, Uint8Array | string>): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let off = 0;
  for (const [name, content] of Object.entries(files)) {
    const data = typeof content === 'string' ? enc.encode(content) : content;
    const nm = enc.encode(name);
    const crc = crc32(data);
    const lh = new Uint8Array(30 + nm.length);
    const lv = new DataView(lh.buffer);
    lv.setUint32(0, 0x04034b50, true); lv.setUint16(4, 20, true); lv.setUint32(14, crc, true);
    lv.setUint32(18, data.length, true); lv.setUint32(22, data.length, true); lv.setUint16(26, nm.length, true);
    lh.set(nm, 30);
    const ch = new Uint8Array(46 + nm.length);
    const cv = new DataView(ch.buffer);
    cv.setUint32(0, 0x02014b50, true); cv.setUint16(4, 20, true); cv.setUint16(6, 20, true); cv.setUint32(16, crc, true);
    cv.setUint32(20, data.length, true); cv.setUint32(24, data.length, true); cv.setUint16(28, nm.length, true);
    cv.setUint32(42, off, true);
    ch.set(nm, 46);
    parts.push(lh, data);
    central.push(ch);
    off += lh.length + data.length;
  }
  const cdSize = central.reduce((s, c) => s + c.length, 0);
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true); ev.setUint16(8, central.length, true); ev.setUint16(10, central.length, true);
  ev.setUint32(12, cdSize, true); ev.setUint32(16, off, true);
  const all = [...parts, ...central, eocd];
  const out = new Uint8Array(all.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of all) { out.set(p, o); o += p.length; }
  return out;
}
