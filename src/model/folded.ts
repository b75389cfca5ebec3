/**
 * The folded (inference-time) form of the TinyFER binary attention network.
 *
 * This is the contract between the tfjs training graph (src/model/network.ts), the exporter
 * (BatchNorm folded, weights binarized), the model blob (src/model/format.ts,
 * docs/model-format.md) and the C core (firmware/core). Every field's meaning is defined
 * here; the C structs mirror it.
 *
 * Tensor layouts are channels-last (HWC) everywhere. Input: 48x48x1 uint8.
 *
 * Semantics, in order (all arithmetic in float32):
 *  1. x = pixel * inputScale                          (48x48x1)
 *  2. stem: 3x3 conv, stride 1, zero 'same' padding, weight [cout][ky][kx][cin], + bias
 *     (BatchNorm folded in), then 2x2 max-pool stride 2  -> 24x24xC
 *     An int8 stem (FoldedInt8Stem, a model trained with its stem on the int8 grid) instead, with
 *     integers where the float stem has floats, and no inputScale (it is in scale):
 *       acc[y][x][o] = sum_{ky,kx} weightQ[o][ky][kx] * pixel[y+ky-1][x+kx-1]  (exact integers,
 *                      raw pixels 0..255, zero 'same' padding)
 *       m = max of acc over the 2x2 pool window, stride 2                  (an integer)
 *       out[py][px][o] = (m * scale[o]) + bias[o]   (two float32 roundings; |m| < 2^24 is exact)
 *  3. blocks, in order, each one of:
 *     - 'binary' (Bi-Real style residual block with XNOR-Net scaling):
 *         b[y][x][c] = (x[y][x][c] >= threshold[c]) ? +1 : -1         (sign with learnt threshold)
 *         b is padded by one pixel with +1 on every side (not 0)
 *         conv[o] = sum_{ky,kx,c} b[sy+ky][sx+kx][c] * w[o][ky][kx][c]  with w in {+1,-1}
 *                  (an exact integer; stride `stride`, 'valid' over the padded plane)
 *         main[o] = scale[o] * conv[o] + bias[o]       (alpha = mean|W| and BatchNorm folded)
 *         short   = x                                  when stride 1 and cin == cout
 *                 = avgpool2x2(x) then 1x1 conv (shortcutWeight [cout][cin], + shortcutBias)
 *                   otherwise (stride must then be 2)
 *         y = main + short; out = y >= 0 ? y : prelu[o] * y
 *     - 'cbam' (channel then spatial attention, full precision):
 *         avg[c] = mean over HxW, max[c] = max over HxW
 *         mlp(v) = w2 . relu(w1 . v + b1) + b2         (w1 [hidden][C], w2 [C][hidden])
 *         x[..][c] *= sigmoid(mlp(avg)[c] + mlp(max)[c])
 *         then per pixel: a = mean_c x, m = max_c x
 *         s = sigmoid(conv7x7([a, m]) + spatialBias), zero 'same' padding,
 *             spatialWeight [ky][kx][2] (channel 0 = mean, 1 = max)
 *         x[y][x][c] *= s[y][x]
 *  4. the head, one of:
 *     - global average pooling -> v [C]; logits = headWeight [classes][C] . v + headBias
 *     - a grid head (FoldedGridHead, blob format version 3), over the last HxH plane with g | H:
 *         avg[i][j][c] = (sum over the (H/g)x(H/g) pixels of region (i, j), row by row) / (H/g)^2
 *         v[(i*g + j)*k + q] = sum_c reduce[q][c] * avg[i][j][c]        (no bias, no activation)
 *         logits = headWeight [classes][g*g*k] . v + headBias
 *     scores = softmax(logits).
 */
import { LABELS, type Label } from './labels';

export interface FoldedStem {
  cin: 1;
  cout: number;
  k: 3;
  /** [cout][3][3][cin] */
  weight: Float32Array;
  /** [cout] */
  bias: Float32Array;
}

/**
 * The stem of a model trained with its kernel on the int8 grid (`tinyfer train --stem-int8`): its
 * 3x3 weights as integers and one positive scale per output (see the semantics above). Blob format
 * version 2.
 */
export interface FoldedInt8Stem {
  cin: 1;
  cout: number;
  k: 3;
  /** [cout][3][3][cin], any int8 */
  weightQ: Int8Array;
  /** [cout], finite and > 0 */
  scale: Float32Array;
  /** [cout] */
  bias: Float32Array;
}

/** Whether `s` is an int8 stem. */
export function isInt8Stem(s: FoldedStem | FoldedInt8Stem): s is FoldedInt8Stem {
  return 'weightQ' in s;
}

export interface FoldedBinaryBlock {
  type: 'binary';
  cin: number;
  cout: number;
  stride: 1 | 2;
  /** [cin]: activation is +1 where x >= threshold. */
  threshold: Float32Array;
  /** [cout][3][3][cin], each +1 or -1. */
  weightSign: Int8Array;
  /** [cout] */
  scale: Float32Array;
  /** [cout] */
  bias: Float32Array;
  /** Present iff the shortcut is projected (stride 2 or cin != cout). [cout][cin] */
  shortcutWeight?: Float32Array;
  /** [cout], present with shortcutWeight. */
  shortcutBias?: Float32Array;
  /** [cout] PReLU slopes for negative inputs. */
  prelu: Float32Array;
  /**
   * A repeat pass (architecture tinyfer-b1r): the index of an earlier binary block, of the same
   * cin and cout and itself not a repeat, whose threshold and weightSign this block uses (they
   * are then equal to that block's; the blob stores them once). Its scale, bias and prelu are
   * its own: they hold its own BatchNorm.
   */
  shares?: number;
}

export interface FoldedCbam {
  type: 'cbam';
  channels: number;
  hidden: number;
  /** [hidden][channels] */
  w1: Float32Array;
  /** [hidden] */
  b1: Float32Array;
  /** [channels][hidden] */
  w2: Float32Array;
  /** [channels] */
  b2: Float32Array;
  /** [7][7][2] */
  spatialWeight: Float32Array;
  spatialBias: number;
}

export type FoldedBlock = FoldedBinaryBlock | FoldedCbam;

/**
 * The grid head (architecture tinyfer-b1g): the last feature map averaged over g x g regions,
 * each region's C averages reduced to k values by one 1x1 linear map, the g*g*k values the
 * input of the classifier (headWeight). Where the global average says what the face shows, the
 * grid also says where (brows above, mouth below).
 */
export interface FoldedGridHead {
  /** Regions per side, 1..255; must divide the last plane's side. */
  grid: number;
  /** Values per region after the reduce, 1..255. */
  k: number;
  /** [k][C] */
  reduce: Float32Array;
}

export interface FoldedModel {
  /** Free text that names this model (e.g. 'tinyfer-b1 fer2013 2026-11-25'). */
  name: string;
  labels: readonly Label[];
  inputSize: 48;
  /** Multiplies the uint8 pixel (1/255). */
  inputScale: number;
  stem: FoldedStem | FoldedInt8Stem;
  blocks: FoldedBlock[];
  /** Present for a grid head; absent: global average pooling. */
  gridHead?: FoldedGridHead;
  /** [classes][C], or [classes][grid*grid*k] with a grid head */
  headWeight: Float32Array;
  /** [classes] */
  headBias: Float32Array;
}

/** Inputs of the classifier (headWeight's row length): C, or grid*grid*k with a grid head. */
export function headInputs(m: Pick<FoldedModel, 'gridHead'>, channels: number): number {
  const g = m.gridHead;
  return g ? g.grid * g.grid * g.k : channels;
}

export const DEFAULT_LABELS: readonly Label[] = LABELS;
