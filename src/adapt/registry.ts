// The methods `cliptune train --method` knows, by name.
import type { MethodSpec } from './method.js';
import { ZEROSHOT } from './zeroshot.js';
import { COOP } from './coop.js';
import { PROLIP } from './prolip.js';
import { LINEAR_PROBE } from './linear-probe.js';
import { RPP } from './rpp.js';
import { DAPT } from './dapt.js';
import { IVLP, VPT } from './ivlp.js';
import { PROMPT_OT } from './prompt-ot.js';

export const METHODS: Readonly<Record<string, MethodSpec>> = Object.freeze({
  zeroshot: ZEROSHOT,
  coop: COOP,
  prolip: PROLIP,
  'linear-probe': LINEAR_PROBE,
  dapt: DAPT,
  rpp: RPP,
  ivlp: IVLP,
  vpt: VPT,
  'prompt-ot': PROMPT_OT,
});

export function methodNames(): string[] {
  return Object.keys(METHODS);
}
