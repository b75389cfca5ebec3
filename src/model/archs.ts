/** The named network architectures (no TensorFlow.js import: the CLI validates --arch with it). */

/**
 * The named architectures: channels and binary blocks per stage, and the head (grid 0: global
 * average; g: the grid head, g x g regions of gridK values each, src/model/folded.ts). Every
 * stage after the first starts with a stride-2 block (projected shortcut); every stage ends with a CBAM.
 *   tinyfer-b1: 24x24x32 -> 12x12x56 with a global-average head, 69,035 parameters: the shipped
 *               model up to r9, and the default architecture for `train` without --init.
 *   tinyfer-b2: experimental, a third stage (24x24x24 -> 12x12x40 -> 6x6x64): twice the
 *               receptive field of b1 within the same parameter budget.
 *   tinyfer-b1r: experimental, b1 with every stage's stride-1 blocks run twice (`repeat`): the
 *               second pass reuses their binary convolutions (weights and thresholds) with its
 *               own BatchNorm and PReLU. More depth and compute (1.9x) for 600 parameters.
 *   tinyfer-b1g: b1 with the grid head: the last 12x12x56 plane averaged over 3x3 regions, each
 *               reduced to 8 values, the classifier over all 72 (where, not only what: brows
 *               above, mouth below). 69,595 parameters; with an int8 stem its blob fits 32 KB.
 *               The shipped model since r10 (bundled under the name tinyfer-b1).
 */
export const ARCHS = {
  'tinyfer-b1': { widths: [32, 56], depths: [2, 2], repeat: false, grid: 0, gridK: 0 },
  'tinyfer-b2': { widths: [24, 40, 64], depths: [2, 2, 1], repeat: false, grid: 0, gridK: 0 },
  'tinyfer-b1r': { widths: [32, 56], depths: [2, 2], repeat: true, grid: 0, gridK: 0 },
  'tinyfer-b1g': { widths: [32, 56], depths: [2, 2], repeat: false, grid: 3, gridK: 8 },
} as const satisfies Record<string, { widths: readonly number[]; depths: readonly number[]; repeat: boolean; grid: number; gridK: number }>;
export type ArchName = keyof typeof ARCHS;

export const ARCH_NAME: ArchName = 'tinyfer-b1';

/** The architecture a model (its name, e.g. 'tinyfer-b2-float') was built as; tinyfer-b1 if none matches. */
export function archOf(modelName: string | undefined): ArchName {
  const base = (modelName ?? '').replace(/-float$/, '');
  return base in ARCHS ? (base as ArchName) : ARCH_NAME;
}
