/**
 * The TinyFER model blob: a compact little-endian binary form of a FoldedModel that the C
 * core (firmware/core) reads in place, without copying, from flash or from wasm memory.
 *
 * The byte layout is documented in docs/model-format.md; the semantics of every field are
 * those of src/model/folded.ts. Binary convolution weights are stored packed, one bit per
 * weight (1 = +1, 0 = -1), per output channel and per tap, input channels packed into
 * 32-bit words (channel c is bit c % 32 of word c / 32, unused high bits 0), which is the
 * order the XNOR/popcount loop of firmware/core/src/op_binary_conv.c reads them in.
 */
import { LABELS, NUM_CLASSES, type Label } from './labels';
import { headInputs, isInt8Stem, type FoldedBinaryBlock, type FoldedBlock, type FoldedCbam, type FoldedGridHead, type FoldedModel } from './folded';

export const MAGIC = 'TFER';
/**
 * The newest format version (2: the int8 stem; 3: the grid head). A blob is written with the
 * oldest version that holds it (3 with a grid head, else 2 with an int8 stem, else 1), so that
 * older cores keep reading the models they can run.
 */
export const FORMAT_VERSION = 3;
export const FORMAT_VERSION_MIN = 1;
/** The stem section's kind field (reserved, 0, in version 1). */
export const STEM_FLOAT = 0;
export const STEM_INT8 = 1;
/** Largest grid (regions per side) and reduce width (values per region) of a grid head. */
export const MAX_HEAD_GRID = 255;
export const MAX_HEAD_K = 255;
export const HEADER_SIZE = 16;
export const BLOCK_BINARY = 1;
export const BLOCK_CBAM = 2;
/** Binary-block flag: the shortcut is projected (avgpool 2x2 + 1x1 conv). */
export const FLAG_PROJECTED = 1;
/**
 * Binary-block flag: the block reuses the threshold and weight bits of an earlier block (the
 * byte after the flags holds that block's index) and the blob does not repeat them.
 */
export const FLAG_SHARED = 2;
/** Largest channel count the format (and the C core) accepts. */
export const MAX_CHANNELS = 1024;
/** Largest number of blocks the C core accepts (TFR_MAX_BLOCKS). */
export const MAX_BLOCKS = 32;

/** The format version a model is written with: the oldest that holds it. */
export function versionFor(m: FoldedModel): number {
  return m.gridHead ? 3 : isInt8Stem(m.stem) ? 2 : 1;
}

/** Words of 32 bits that hold one pixel's `channels` activation bits. */
export function wordsPerPixel(channels: number): number {
  return Math.ceil(channels / 32);
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3, the zlib one) of `bytes`. */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function fail(msg: string): never {
  throw new Error(`TinyFER model: ${msg}`);
}

function checkLen(what: string, a: ArrayLike<number> | undefined, n: number): void {
  if (!a || a.length !== n) fail(`${what} has ${a ? a.length : 'no'} values, expected ${n}`);
}

function checkFinite(what: string, a: ArrayLike<number>): void {
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) fail(`${what}[${i}] is not a finite number`);
  }
}

function sameValues(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function checkChannels(what: string, n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_CHANNELS) fail(`${what} = ${n} is not an integer in 1..${MAX_CHANNELS}`);
}

/**
 * Checks that `m` is a well-formed FoldedModel (array sizes, channel chain, stride and
 * shortcut rules of folded.ts, spatial sizes). Throws an Error naming the first problem.
 */
export function validateFoldedModel(m: FoldedModel): void {
  if (m.inputSize !== 48) fail(`inputSize must be 48, got ${m.inputSize}`);
  if (!Number.isFinite(m.inputScale)) fail('inputScale is not a finite number');
  if (m.labels.length !== NUM_CLASSES) fail(`expected ${NUM_CLASSES} labels, got ${m.labels.length}`);
  m.labels.forEach((l, i) => {
    if (!(LABELS as readonly string[]).includes(l)) fail(`label ${i} '${l}' is not a known label`);
    if (m.labels.indexOf(l) !== i) fail(`label ${i} '${l}' repeats label ${m.labels.indexOf(l)}`);
  });
  const s = m.stem;
  if (s.cin !== 1 || s.k !== 3) fail('stem must be a 3x3 conv over 1 channel');
  checkChannels('stem.cout', s.cout);
  if (isInt8Stem(s)) {
    if (!(s.weightQ instanceof Int8Array)) fail('stem.weightQ must be an Int8Array');
    checkLen('stem.weightQ', s.weightQ, s.cout * 9);
    checkLen('stem.scale', s.scale, s.cout);
    checkFinite('stem.scale', s.scale);
    for (let o = 0; o < s.cout; o++) if (!(s.scale[o] > 0)) fail(`stem.scale[${o}] = ${s.scale[o]} is not positive`);
  } else {
    checkLen('stem.weight', s.weight, s.cout * 9);
    checkFinite('stem.weight', s.weight);
  }
  checkLen('stem.bias', s.bias, s.cout);
  checkFinite('stem.bias', s.bias);
  if (m.blocks.length > MAX_BLOCKS) fail(`${m.blocks.length} blocks, at most ${MAX_BLOCKS}`);
  let c = s.cout;
  let hw = 24;
  m.blocks.forEach((b, i) => {
    const at = `block ${i} (${b.type})`;
    if (b.type === 'binary') {
      checkChannels(`${at} cin`, b.cin);
      checkChannels(`${at} cout`, b.cout);
      if (b.cin !== c) fail(`${at} cin ${b.cin} does not match the ${c} incoming channels`);
      if (b.stride !== 1 && b.stride !== 2) fail(`${at} stride must be 1 or 2`);
      if (b.stride === 1 && b.cin !== b.cout) fail(`${at} changes channels ${b.cin}->${b.cout} with stride 1 (must be 2)`);
      if (b.stride === 2) {
        if (hw % 2 !== 0) fail(`${at} has stride 2 on an odd ${hw}x${hw} plane`);
        hw /= 2;
      }
      if (b.shares !== undefined) {
        const src = m.blocks[b.shares];
        if (!Number.isInteger(b.shares) || b.shares < 0 || b.shares >= i) fail(`${at} shares block ${b.shares}, which is not an earlier block`);
        if (src.type !== 'binary' || src.shares !== undefined) fail(`${at} shares block ${b.shares}, which is not a binary block with weights of its own`);
        if (src.cin !== b.cin || src.cout !== b.cout) fail(`${at} (${b.cin}->${b.cout}) shares the weights of block ${b.shares} (${src.cin}->${src.cout})`);
        if (!sameValues(src.threshold, b.threshold) || !sameValues(src.weightSign, b.weightSign)) {
          fail(`${at} shares block ${b.shares} but its threshold or weightSign differ from it`);
        }
      }
      checkLen(`${at} threshold`, b.threshold, b.cin);
      checkLen(`${at} weightSign`, b.weightSign, b.cout * 9 * b.cin);
      for (let k = 0; k < b.weightSign.length; k++) {
        if (b.weightSign[k] !== 1 && b.weightSign[k] !== -1) fail(`${at} weightSign[${k}] = ${b.weightSign[k]} is not +1 or -1`);
      }
      checkLen(`${at} scale`, b.scale, b.cout);
      checkLen(`${at} bias`, b.bias, b.cout);
      checkLen(`${at} prelu`, b.prelu, b.cout);
      const projected = b.stride === 2 || b.cin !== b.cout;
      if (projected) {
        checkLen(`${at} shortcutWeight`, b.shortcutWeight, b.cout * b.cin);
        checkLen(`${at} shortcutBias`, b.shortcutBias, b.cout);
        checkFinite(`${at} shortcutWeight`, b.shortcutWeight as Float32Array);
        checkFinite(`${at} shortcutBias`, b.shortcutBias as Float32Array);
      } else if (b.shortcutWeight || b.shortcutBias) {
        fail(`${at} has a projected shortcut but stride 1 and cin == cout (identity)`);
      }
      for (const [n, a] of [['threshold', b.threshold], ['scale', b.scale], ['bias', b.bias], ['prelu', b.prelu]] as const) {
        checkFinite(`${at} ${n}`, a);
      }
      c = b.cout;
    } else if (b.type === 'cbam') {
      checkChannels(`${at} channels`, b.channels);
      checkChannels(`${at} hidden`, b.hidden);
      if (b.channels !== c) fail(`${at} channels ${b.channels} does not match the ${c} incoming channels`);
      checkLen(`${at} w1`, b.w1, b.hidden * b.channels);
      checkLen(`${at} b1`, b.b1, b.hidden);
      checkLen(`${at} w2`, b.w2, b.channels * b.hidden);
      checkLen(`${at} b2`, b.b2, b.channels);
      checkLen(`${at} spatialWeight`, b.spatialWeight, 98);
      for (const [n, a] of [['w1', b.w1], ['b1', b.b1], ['w2', b.w2], ['b2', b.b2], ['spatialWeight', b.spatialWeight]] as const) {
        checkFinite(`${at} ${n}`, a);
      }
      if (!Number.isFinite(b.spatialBias)) fail(`${at} spatialBias is not a finite number`);
    } else {
      fail(`block ${i} has unknown type '${(b as { type: string }).type}'`);
    }
  });
  const g = m.gridHead;
  if (g) {
    if (!Number.isInteger(g.grid) || g.grid < 1 || g.grid > MAX_HEAD_GRID) fail(`gridHead.grid = ${g.grid} is not an integer in 1..${MAX_HEAD_GRID}`);
    if (!Number.isInteger(g.k) || g.k < 1 || g.k > MAX_HEAD_K) fail(`gridHead.k = ${g.k} is not an integer in 1..${MAX_HEAD_K}`);
    if (hw % g.grid !== 0) fail(`gridHead.grid = ${g.grid} regions per side do not divide the last ${hw}x${hw} plane`);
    checkLen('gridHead.reduce', g.reduce, g.k * c);
    checkFinite('gridHead.reduce', g.reduce);
  }
  checkLen('headWeight', m.headWeight, NUM_CLASSES * headInputs(m, c));
  checkLen('headBias', m.headBias, NUM_CLASSES);
  checkFinite('headWeight', m.headWeight);
  checkFinite('headBias', m.headBias);
}

/** Growable little-endian byte writer. */
class Writer {
  private buf = new Uint8Array(1 << 14);
  private view = new DataView(this.buf.buffer);
  pos = 0;
  private need(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.pos));
    this.buf = b;
    this.view = new DataView(b.buffer);
  }
  u8(v: number): void { this.need(1); this.view.setUint8(this.pos, v); this.pos += 1; }
  u16(v: number): void { this.need(2); this.view.setUint16(this.pos, v, true); this.pos += 2; }
  u32(v: number): void { this.need(4); this.view.setUint32(this.pos, v >>> 0, true); this.pos += 4; }
  f32(v: number): void { this.need(4); this.view.setFloat32(this.pos, v, true); this.pos += 4; }
  f32s(a: ArrayLike<number>): void { for (let i = 0; i < a.length; i++) this.f32(a[i]); }
  bytes(a: Uint8Array): void { this.need(a.length); this.buf.set(a, this.pos); this.pos += a.length; }
  align4(): void { while (this.pos % 4) this.u8(0); }
  done(): Uint8Array { return this.buf.slice(0, this.pos); }
}

/** Packs [cout][3][3][cin] signs into [cout][3][3][words] 32-bit words, bit set where +1. */
export function packSigns(sign: Int8Array, cout: number, cin: number): Uint32Array {
  const words = wordsPerPixel(cin);
  const out = new Uint32Array(cout * 9 * words);
  for (let o = 0; o < cout; o++) {
    for (let t = 0; t < 9; t++) {
      const src = (o * 9 + t) * cin;
      const dst = (o * 9 + t) * words;
      for (let c = 0; c < cin; c++) {
        if (sign[src + c] > 0) out[dst + (c >>> 5)] |= 1 << (c & 31);
      }
    }
  }
  return out;
}

/** Encodes a FoldedModel into the TFER blob (validates it first). */
export function encodeModel(m: FoldedModel): Uint8Array {
  validateFoldedModel(m);
  const name = new TextEncoder().encode(m.name);
  if (name.length > 255) fail(`name is ${name.length} bytes of UTF-8, at most 255`);
  const w = new Writer();
  // Header; totalSize and crc are patched at the end.
  for (let i = 0; i < 4; i++) w.u8(MAGIC.charCodeAt(i));
  w.u16(versionFor(m));
  w.u16(0);
  w.u32(0);
  w.u32(0);
  // Meta.
  w.u8(m.inputSize);
  w.u8(m.labels.length);
  w.u8(m.blocks.length);
  w.u8(name.length);
  w.f32(m.inputScale);
  w.bytes(name);
  for (const l of m.labels) {
    w.u8(l.length);
    for (let i = 0; i < l.length; i++) w.u8(l.charCodeAt(i));
  }
  w.align4();
  // Stem.
  w.u16(m.stem.cout);
  if (isInt8Stem(m.stem)) {
    w.u16(STEM_INT8);
    w.bytes(new Uint8Array(m.stem.weightQ.buffer, m.stem.weightQ.byteOffset, m.stem.weightQ.length));
    w.align4();
    w.f32s(m.stem.scale);
  } else {
    w.u16(STEM_FLOAT);
    w.f32s(m.stem.weight);
  }
  w.f32s(m.stem.bias);
  // Blocks.
  let c = m.stem.cout;
  for (const b of m.blocks) {
    if (b.type === 'binary') {
      const projected = b.stride === 2 || b.cin !== b.cout;
      const shared = b.shares !== undefined;
      w.u8(BLOCK_BINARY);
      w.u8(b.stride);
      w.u8((projected ? FLAG_PROJECTED : 0) | (shared ? FLAG_SHARED : 0));
      w.u8(shared ? (b.shares as number) : 0);
      w.u16(b.cin);
      w.u16(b.cout);
      if (!shared) w.f32s(b.threshold);
      w.f32s(b.scale);
      w.f32s(b.bias);
      w.f32s(b.prelu);
      if (!shared) {
        const packed = packSigns(b.weightSign, b.cout, b.cin);
        for (let i = 0; i < packed.length; i++) w.u32(packed[i]);
      }
      if (projected) {
        w.f32s(b.shortcutWeight as Float32Array);
        w.f32s(b.shortcutBias as Float32Array);
      }
      c = b.cout;
    } else {
      w.u8(BLOCK_CBAM);
      w.u8(0);
      w.u8(0);
      w.u8(0);
      w.u16(b.channels);
      w.u16(b.hidden);
      w.f32s(b.w1);
      w.f32s(b.b1);
      w.f32s(b.w2);
      w.f32s(b.b2);
      w.f32s(b.spatialWeight);
      w.f32(b.spatialBias);
    }
  }
  // Head.
  w.u16(m.labels.length);
  w.u16(c);
  if (m.gridHead) {
    w.u8(m.gridHead.grid);
    w.u8(m.gridHead.k);
    w.u16(0);
    w.f32s(m.gridHead.reduce);
  }
  w.f32s(m.headWeight);
  w.f32s(m.headBias);
  const blob = w.done();
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  view.setUint32(8, blob.length, true);
  view.setUint32(12, crc32(blob.subarray(HEADER_SIZE)), true);
  return blob;
}

/** Bounds-checked little-endian reader; every read names the section it is in. */
class Reader {
  pos: number;
  section = 'header';
  private view: DataView;
  constructor(private blob: Uint8Array, start: number) {
    this.pos = start;
    this.view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  }
  private need(n: number): void {
    if (this.pos + n > this.blob.length) {
      fail(`truncated: the ${this.section} needs ${n} bytes at offset ${this.pos} but the blob ends at ${this.blob.length}`);
    }
  }
  u8(): number { this.need(1); return this.view.getUint8(this.pos++); }
  u16(): number { this.need(2); const v = this.view.getUint16(this.pos, true); this.pos += 2; return v; }
  u32(): number { this.need(4); const v = this.view.getUint32(this.pos, true); this.pos += 4; return v; }
  f32(): number { this.need(4); const v = this.view.getFloat32(this.pos, true); this.pos += 4; return v; }
  f32s(n: number): Float32Array {
    this.need(4 * n);
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.view.getFloat32(this.pos + 4 * i, true);
    this.pos += 4 * n;
    return a;
  }
  bytes(n: number): Uint8Array { this.need(n); const b = this.blob.slice(this.pos, this.pos + n); this.pos += n; return b; }
  align4(): void {
    while (this.pos % 4) {
      if (this.u8() !== 0) fail(`non-zero padding byte in the ${this.section} at offset ${this.pos - 1}`);
    }
  }
  zero(what: string, v: number): void {
    if (v !== 0) fail(`${what} in the ${this.section} must be 0, got ${v}`);
  }
}

/**
 * Decodes and fully checks a TFER blob (magic, version, flags, size, CRC, every section's
 * bounds, the network's shape rules). Throws an Error that says what is wrong and where.
 */
export function decodeModel(blob: Uint8Array): FoldedModel {
  return decodeWithLayout(blob).model;
}

/** One section of a blob: its name, where it starts and how many bytes it has. */
export interface BlobSection {
  section: string;
  offset: number;
  size: number;
}

/** The sections of a valid blob (header, meta, stem, block i, head) with offsets and sizes. */
export function blobLayout(blob: Uint8Array): BlobSection[] {
  return decodeWithLayout(blob).layout;
}

function decodeWithLayout(blob: Uint8Array): { model: FoldedModel; layout: BlobSection[] } {
  const starts: [string, number][] = [['header', 0]];
  if (!(blob instanceof Uint8Array)) fail('blob must be a Uint8Array');
  if (blob.length < HEADER_SIZE) fail(`truncated: ${blob.length} bytes, the header alone is ${HEADER_SIZE}`);
  const magic = String.fromCharCode(blob[0], blob[1], blob[2], blob[3]);
  if (magic !== MAGIC) fail(`bad magic '${magic.replace(/[^\x20-\x7e]/g, '?')}', not a TinyFER model blob`);
  const r = new Reader(blob, 4);
  const version = r.u16();
  if (version < FORMAT_VERSION_MIN || version > FORMAT_VERSION) {
    fail(`format version ${version} is not supported (this build reads versions ${FORMAT_VERSION_MIN} to ${FORMAT_VERSION})`);
  }
  const flags = r.u16();
  if (flags !== 0) fail(`unsupported flags 0x${flags.toString(16)} (version ${version} defines none)`);
  const total = r.u32();
  if (total !== blob.length) {
    fail(total > blob.length
      ? `truncated: header says ${total} bytes but the blob has ${blob.length}`
      : `size mismatch: header says ${total} bytes but the blob has ${blob.length}`);
  }
  const crc = r.u32();
  const actual = crc32(blob.subarray(HEADER_SIZE));
  if (crc !== actual) fail(`CRC mismatch (header 0x${crc.toString(16).padStart(8, '0')}, content 0x${actual.toString(16).padStart(8, '0')}): the blob is corrupt`);

  r.section = 'meta section';
  starts.push(['meta', r.pos]);
  const inputSize = r.u8();
  if (inputSize !== 48) fail(`inputSize ${inputSize} is not 48`);
  const classes = r.u8();
  if (classes !== NUM_CLASSES) fail(`${classes} classes, expected ${NUM_CLASSES}`);
  const nBlocks = r.u8();
  if (nBlocks > MAX_BLOCKS) fail(`${nBlocks} blocks, at most ${MAX_BLOCKS}`);
  const nameLen = r.u8();
  const inputScale = r.f32();
  const name = new TextDecoder().decode(r.bytes(nameLen));
  const labels: Label[] = [];
  for (let i = 0; i < classes; i++) {
    const l = String.fromCharCode(...r.bytes(r.u8()));
    if (!(LABELS as readonly string[]).includes(l)) fail(`label ${i} '${l}' is not a known label`);
    labels.push(l as Label);
  }
  r.align4();

  r.section = 'stem section';
  starts.push(['stem', r.pos]);
  const cout = r.u16();
  const kind = r.u16();
  if (version < 2) r.zero('reserved field (the stem kind from version 2)', kind);
  if (kind !== STEM_FLOAT && kind !== STEM_INT8) fail(`unknown stem kind ${kind} in the stem section (${STEM_FLOAT} float32, ${STEM_INT8} int8)`);
  checkChannels('stem cout', cout);
  let stem: FoldedModel['stem'];
  if (kind === STEM_INT8) {
    const q = r.bytes(cout * 9);
    const weightQ = new Int8Array(q.buffer, q.byteOffset, q.length);
    r.align4();
    // the scales' values (finite, > 0) are checked with the rest of the model (validateFoldedModel)
    stem = { cin: 1, cout, k: 3, weightQ, scale: r.f32s(cout), bias: r.f32s(cout) };
  } else {
    stem = { cin: 1, cout, k: 3, weight: r.f32s(cout * 9), bias: r.f32s(cout) };
  }

  const blocks: FoldedBlock[] = [];
  let c = cout;
  let hw = 24;
  for (let i = 0; i < nBlocks; i++) {
    r.section = `block ${i} section`;
    starts.push([`block ${i}`, r.pos]);
    const type = r.u8();
    if (type === BLOCK_BINARY) {
      const stride = r.u8();
      const flags = r.u8();
      const source = r.u8();
      const cin = r.u16();
      const bout = r.u16();
      checkChannels(`block ${i} cin`, cin);
      checkChannels(`block ${i} cout`, bout);
      if (cin !== c) fail(`block ${i} cin ${cin} does not match the ${c} incoming channels`);
      if (stride !== 1 && stride !== 2) fail(`block ${i} stride ${stride} is not 1 or 2`);
      if (stride === 1 && cin !== bout) fail(`block ${i} changes channels ${cin}->${bout} with stride 1`);
      if (stride === 2) {
        if (hw % 2) fail(`block ${i} has stride 2 on an odd ${hw}x${hw} plane`);
        hw /= 2;
      }
      const projected = stride === 2 || cin !== bout;
      if ((flags & ~(FLAG_PROJECTED | FLAG_SHARED)) !== 0) fail(`block ${i} has unknown flags 0x${flags.toString(16)}`);
      if (((flags & FLAG_PROJECTED) !== 0) !== projected) fail(`block ${i} projected-shortcut flag contradicts its stride/channels`);
      const shared = (flags & FLAG_SHARED) !== 0;
      if (!shared) r.zero('reserved byte', source);
      let src: FoldedBinaryBlock | undefined;
      if (shared) {
        const b = blocks[source];
        if (source >= i || b.type !== 'binary' || b.shares !== undefined || b.cin !== cin || b.cout !== bout) {
          fail(`block ${i} shares block ${source}, which is not an earlier binary block of ${cin}->${bout} channels with weights of its own`);
        }
        src = b;
      }
      const threshold = src ? src.threshold : r.f32s(cin);
      const scale = r.f32s(bout);
      const bias = r.f32s(bout);
      const prelu = r.f32s(bout);
      const words = wordsPerPixel(cin);
      const weightSign = src ? src.weightSign : new Int8Array(bout * 9 * cin);
      for (let ot = 0; !src && ot < bout * 9; ot++) {
        for (let k = 0; k < words; k++) {
          const word = r.u32();
          for (let b = 0; b < 32; b++) {
            const ch = k * 32 + b;
            const bit = (word >>> b) & 1;
            if (ch < cin) weightSign[ot * cin + ch] = bit ? 1 : -1;
            else if (bit) fail(`block ${i} has a set padding bit in weight word ${ot * words + k}`);
          }
        }
      }
      const block: FoldedBinaryBlock = { type: 'binary', cin, cout: bout, stride: stride as 1 | 2, threshold, weightSign, scale, bias, prelu };
      if (src) block.shares = source;
      if (projected) {
        block.shortcutWeight = r.f32s(bout * cin);
        block.shortcutBias = r.f32s(bout);
      }
      blocks.push(block);
      c = bout;
    } else if (type === BLOCK_CBAM) {
      r.zero('reserved byte', r.u8());
      r.zero('reserved byte', r.u8());
      r.zero('reserved byte', r.u8());
      const channels = r.u16();
      const hidden = r.u16();
      checkChannels(`block ${i} channels`, channels);
      checkChannels(`block ${i} hidden`, hidden);
      if (channels !== c) fail(`block ${i} channels ${channels} does not match the ${c} incoming channels`);
      const block: FoldedCbam = {
        type: 'cbam', channels, hidden,
        w1: r.f32s(hidden * channels), b1: r.f32s(hidden),
        w2: r.f32s(channels * hidden), b2: r.f32s(channels),
        spatialWeight: r.f32s(98), spatialBias: r.f32(),
      };
      blocks.push(block);
    } else {
      fail(`block ${i} has unknown type ${type}`);
    }
  }

  r.section = 'head section';
  starts.push(['head', r.pos]);
  const hc = r.u16();
  const hin = r.u16();
  if (hc !== classes) fail(`head has ${hc} classes, expected ${classes}`);
  if (hin !== c) fail(`head takes ${hin} channels but the last block gives ${c}`);
  // version 3 on: the head's kind (grid 0: global average; else a grid head and its reduce)
  let gridHead: FoldedGridHead | undefined;
  if (version >= 3) {
    const grid = r.u8();
    const k = r.u8();
    r.zero('reserved field', r.u16());
    if (grid === 0) {
      if (k !== 0) fail(`head has k = ${k} but no grid (grid 0 is the global average, k must be 0)`);
    } else {
      if (k === 0) fail(`head has a ${grid}x${grid} grid but k = 0`);
      if (hw % grid) fail(`head's ${grid} regions per side do not divide the last ${hw}x${hw} plane`);
      gridHead = { grid, k, reduce: r.f32s(k * hin) };
    }
  }
  const headWeight = r.f32s(hc * headInputs({ gridHead }, hin));
  const headBias = r.f32s(hc);
  if (r.pos !== blob.length) fail(`${blob.length - r.pos} unexpected bytes after the head section`);
  const m: FoldedModel = { name, labels, inputSize: 48, inputScale, stem, blocks, ...(gridHead ? { gridHead } : {}), headWeight, headBias };
  validateFoldedModel(m);
  const layout = starts.map(([section, offset], i) => ({ section, offset, size: (starts[i + 1]?.[1] ?? blob.length) - offset }));
  return { model: m, layout };
}

/**
 * A C header that embeds `blob` as a 16-byte aligned `const uint8_t` array (in flash on
 * the ESP32) plus its length, for tfr_model_parse().
 */
export function toCHeader(blob: Uint8Array, symbolName: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(symbolName)) fail(`'${symbolName}' is not a C identifier`);
  decodeModel(blob); // never embed a blob the core would reject
  const guard = `${symbolName.toUpperCase()}_H`;
  const lines: string[] = [];
  for (let i = 0; i < blob.length; i += 16) {
    const row = Array.from(blob.subarray(i, i + 16), (b) => `0x${b.toString(16).padStart(2, '0')}`);
    lines.push(`  ${row.join(', ')},`);
  }
  return [
    `/* Generated by TinyFER (src/model/format.ts toCHeader). Do not edit. */`,
    `/* TFER model blob v${blob[4] | (blob[5] << 8)}, ${blob.length} bytes, crc32 0x${crc32(blob.subarray(HEADER_SIZE)).toString(16).padStart(8, '0')}. */`,
    `#ifndef ${guard}`,
    `#define ${guard}`,
    `#include <stddef.h>`,
    `#include <stdint.h>`,
    `#if defined(__GNUC__) || defined(__clang__)`,
    `#define ${symbolName.toUpperCase()}_ALIGN __attribute__((aligned(16)))`,
    `#else`,
    `#define ${symbolName.toUpperCase()}_ALIGN`,
    `#endif`,
    `static const uint8_t ${symbolName}[${blob.length}] ${symbolName.toUpperCase()}_ALIGN = {`,
    ...lines,
    `};`,
    `static const size_t ${symbolName}_len = ${blob.length};`,
    `#endif /* ${guard} */`,
    ``,
  ].join('\n');
}
