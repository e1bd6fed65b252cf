// The world's classification classes: 48 "colour shape" names in a fixed order (the label order).
//
// Construction (a 12 x 12 colour x shape grid, four "diagonals"): class (c, d) is colour c with
// shape (c + OFFSET[d]) mod 12, for OFFSET = [0, 5, 2, 9]; labels run d-major, colour-minor:
//   labels  0..11  offset 0   red circle, green square, blue triangle, ...        } base
//   labels 12..23  offset 5   red heart, green diamond, blue hexagon, ...         } (first half)
//   labels 24..35  offset 2   red triangle, green star, blue cross, ...           } novel
//   labels 36..47  offset 9   red arrow, green moon, blue oval, ...               } (second half)
// Properties (checked by test/world/classes.test.ts):
// - every colour and every shape occurs exactly 4 times: twice among base classes, twice among
//   novel ones; so each novel class's colour AND shape appear in some base class, and a novel class
//   is an unseen *combination* of seen attributes (base-to-novel = compositional generalisation);
// - no colour-shape pair occurs twice (the offsets are distinct mod 12);
// - any 12 consecutive labels starting at a multiple of 12 contain all 12 colours and all 12 shapes.
// Base = first ceil(48/2) = 24 labels, novel = the other 24, as CoCoOp's subsample_classes splits.
import { COLOURS, SHAPES, type Colour, type Shape } from './attributes.js';

export const CLASS_OFFSETS = [0, 5, 2, 9] as const;

export const WORLD_CLASSES = [
  'red circle', 'green square', 'blue triangle', 'yellow star', 'purple cross', 'orange heart',
  'pink diamond', 'brown hexagon', 'white ring', 'black arrow', 'gray moon', 'cyan oval',
  'red heart', 'green diamond', 'blue hexagon', 'yellow ring', 'purple arrow', 'orange moon',
  'pink oval', 'brown circle', 'white square', 'black triangle', 'gray star', 'cyan cross',
  'red triangle', 'green star', 'blue cross', 'yellow heart', 'purple diamond', 'orange hexagon',
  'pink ring', 'brown arrow', 'white moon', 'black oval', 'gray circle', 'cyan square',
  'red arrow', 'green moon', 'blue oval', 'yellow circle', 'purple square', 'orange triangle',
  'pink star', 'brown cross', 'white heart', 'black diamond', 'gray hexagon', 'cyan ring',
] as const;
export type WorldClassName = (typeof WORLD_CLASSES)[number];

export const NUM_CLASSES = WORLD_CLASSES.length;
/** Labels 0..NUM_BASE-1 are base classes, the rest novel (CoCoOp: base = first ceil(n/2)). */
export const NUM_BASE = Math.ceil(NUM_CLASSES / 2);

export interface WorldClass {
  /** Label in the full 48-class list. */
  index: number;
  name: WorldClassName;
  colour: Colour;
  shape: Shape;
  /** Folder name: the name with underscores for spaces ("red_circle"). */
  folder: string;
  half: 'base' | 'novel';
}

export const WORLD_CLASS_INFO: readonly WorldClass[] = WORLD_CLASSES.map((name, index) => {
  const [colour, shape] = name.split(' ') as [Colour, Shape];
  return { index, name, colour, shape, folder: name.replace(/ /g, '_'), half: index < NUM_BASE ? 'base' : 'novel' };
});

export function baseClassIndices(): number[] {
  return WORLD_CLASS_INFO.filter((c) => c.half === 'base').map((c) => c.index);
}
export function novelClassIndices(): number[] {
  return WORLD_CLASS_INFO.filter((c) => c.half === 'novel').map((c) => c.index);
}

/** `colour shape` -> class, also accepting underscores and any case ("Red_Circle"); undefined if none. */
export function findClass(name: string): WorldClass | undefined {
  const key = name.trim().toLowerCase().replace(/[_\s]+/g, ' ');
  return WORLD_CLASS_INFO.find((c) => c.name === key);
}

/** Every colour-shape combination (144), the classes' first: pretraining covers all of them. */
export function allCombinations(): { colour: Colour; shape: Shape }[] {
  const out: { colour: Colour; shape: Shape }[] = [];
  for (const colour of COLOURS) for (const shape of SHAPES) out.push({ colour, shape });
  return out;
}

export class ClassSelectionError extends Error {}

/**
 * Parses a class selection: 'all', 'base', 'novel', or a comma-separated list whose items are
 * class names (spaces or underscores) or labels / label ranges ("3", "0-11"). Returns class indices
 * in label order (the written dataset re-indexes them 0..n-1 in that order). Throws
 * ClassSelectionError naming the unknown items and listing the valid names.
 */
export function parseClassSelection(spec: string | readonly (string | number)[]): number[] {
  const items: (string | number)[] = typeof spec === 'string' ? spec.split(',') : [...spec];
  if (items.length === 1 && typeof items[0] === 'string') {
    const one = items[0].trim().toLowerCase();
    if (one === 'all') return WORLD_CLASS_INFO.map((c) => c.index);
    if (one === 'base') return baseClassIndices();
    if (one === 'novel') return novelClassIndices();
  }
  const chosen = new Set<number>();
  const bad: string[] = [];
  for (const raw of items) {
    if (typeof raw === 'number') {
      if (Number.isInteger(raw) && raw >= 0 && raw < NUM_CLASSES) chosen.add(raw);
      else bad.push(String(raw));
      continue;
    }
    const item = raw.trim();
    if (item === '') continue;
    const range = /^(\d+)\s*(?:-|\.\.)\s*(\d+)$/.exec(item);
    if (/^\d+$/.test(item) || range) {
      const lo = Number(range ? range[1] : item);
      const hi = Number(range ? range[2] : item);
      if (lo > hi || hi >= NUM_CLASSES) bad.push(item);
      else for (let i = lo; i <= hi; i++) chosen.add(i);
      continue;
    }
    const c = findClass(item);
    if (c) chosen.add(c.index);
    else bad.push(item);
  }
  if (bad.length) {
    throw new ClassSelectionError(
      `unknown class${bad.length > 1 ? 'es' : ''} ${bad.map((b) => JSON.stringify(b)).join(', ')}; ` +
        `use all, base, novel, labels 0-${NUM_CLASSES - 1} or ranges like 0-11, or names (spaces or underscores): ` +
        WORLD_CLASSES.map((n) => n.replace(/ /g, '_')).join(', '),
    );
  }
  if (chosen.size === 0) throw new ClassSelectionError('no classes selected');
  return [...chosen].sort((a, b) => a - b);
}
