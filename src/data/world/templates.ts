// Prompt templates and initialisation phrases the adaptation methods use (methods.md 2.4, 3.1): the
// world's captions contain every one of them, so a CLIP pretrained here has seen them.

/** CoOp's single template for ImageNet-like data and every method's frozen "hand-crafted" prompt. */
export const COOP_TEMPLATE = 'a photo of a {}.';

/** Word initialisation of CoOp/CoCoOp/KgCoOp/IVLP/PromptSRC/Prompt-OT ("a photo of a", M = 4) and MaPLe ("a photo", M = 2). */
export const PROMPT_INIT_PHRASES = ['a photo of a', 'a photo'] as const;

/** CoOp's random-init placeholder: the prompt "X X ... X {classname}." tokenises X once per context slot. */
export const COOP_PLACEHOLDER = 'X';

/** CoOp's IMAGENET_TEMPLATES_SELECT: the 7-template zero-shot ensemble (also ProLIP's ImageNet ensemble). */
export const IMAGENET_TEMPLATES_SELECT = [
  'itap of a {}.', 'a bad photo of the {}.', 'a origami {}.', 'a photo of the large {}.',
  'a {} in a video game.', 'art of the {}.', 'a photo of the small {}.',
] as const;

/** The 80 ImageNet templates of OpenAI's CLIP prompt-engineering notebook, in its order (CoOp's IMAGENET_TEMPLATES). */
export const OPENAI_IMAGENET_TEMPLATES = [
  'a bad photo of a {}.', 'a photo of many {}.', 'a sculpture of a {}.', 'a photo of the hard to see {}.',
  'a low resolution photo of the {}.', 'a rendering of a {}.', 'graffiti of a {}.', 'a bad photo of the {}.',
  'a cropped photo of the {}.', 'a tattoo of a {}.', 'the embroidered {}.', 'a photo of a hard to see {}.',
  'a bright photo of a {}.', 'a photo of a clean {}.', 'a photo of a dirty {}.', 'a dark photo of the {}.',
  'a drawing of a {}.', 'a photo of my {}.', 'the plastic {}.', 'a photo of the cool {}.',
  'a close-up photo of a {}.', 'a black and white photo of the {}.', 'a painting of the {}.', 'a painting of a {}.',
  'a pixelated photo of the {}.', 'a sculpture of the {}.', 'a bright photo of the {}.', 'a cropped photo of a {}.',
  'a plastic {}.', 'a photo of the dirty {}.', 'a jpeg corrupted photo of a {}.', 'a blurry photo of the {}.',
  'a photo of the {}.', 'a good photo of the {}.', 'a rendering of the {}.', 'a {} in a video game.',
  'a photo of one {}.', 'a doodle of a {}.', 'a close-up photo of the {}.', 'a photo of a {}.',
  'the origami {}.', 'the {} in a video game.', 'a sketch of a {}.', 'a doodle of the {}.',
  'a origami {}.', 'a low resolution photo of a {}.', 'the toy {}.', 'a rendition of the {}.',
  'a photo of the clean {}.', 'a photo of a large {}.', 'a rendition of a {}.', 'a photo of a nice {}.',
  'a photo of a weird {}.', 'a blurry photo of a {}.', 'a cartoon {}.', 'art of a {}.',
  'a sketch of the {}.', 'a embroidered {}.', 'a pixelated photo of a {}.', 'itap of the {}.',
  'a jpeg corrupted photo of the {}.', 'a good photo of a {}.', 'a plushie {}.', 'a photo of the nice {}.',
  'a photo of the small {}.', 'a photo of the weird {}.', 'the cartoon {}.', 'art of the {}.',
  'a drawing of the {}.', 'a photo of the large {}.', 'a black and white photo of a {}.', 'the plushie {}.',
  'a dark photo of a {}.', 'itap of a {}.', 'graffiti of the {}.', 'a toy {}.',
  'itap of my {}.', 'a photo of a cool {}.', 'a photo of a small {}.', 'a tattoo of the {}.',
] as const;

/**
 * The 60-template list PromptSRC and Prompt-OT ship as IMAGENET_TEMPLATES: "a photo of a {}." first,
 * then the first 60 OpenAI templates without it.
 */
export const PROMPTSRC_TEMPLATES: readonly string[] = [
  COOP_TEMPLATE,
  ...OPENAI_IMAGENET_TEMPLATES.slice(0, 60).filter((t) => t !== COOP_TEMPLATE),
];

/** Every distinct template above (COOP_TEMPLATE first). */
export const ALL_TEMPLATES: readonly string[] = [...new Set<string>([COOP_TEMPLATE, ...IMAGENET_TEMPLATES_SELECT, ...OPENAI_IMAGENET_TEMPLATES])];

export function fillTemplate(template: string, classname: string): string {
  return template.replace('{}', classname);
}
