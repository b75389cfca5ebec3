/**
 * How a face dataset frames its faces: where the eyes and mouth sit, as fractions of the
 * side, measured with the same landmark net the pipeline crops with. This is how
 * FER_FRAMING (crop.ts) was obtained from FER2013, and how tests check it still holds.
 */
import sharp from 'sharp';
import { FaceDetector } from './detector';

export interface Framing {
  eyeDistance: number;
  eyeMouth: number;
  centreX: number;
  centreY: number;
  /** Faces measured. */
  count: number;
}

/** Side the landmark net is fed (crops are upscaled to it; the net's own input is 112). */
const MEASURE_SIDE = 112;

function median(v: number[]): number {
  const s = v.slice().sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Median framing of square face crops (image files or encoded buffers). */
export async function measureFraming(faces: Array<string | Buffer>): Promise<Framing> {
  if (faces.length === 0) throw new RangeError('measureFraming needs at least one face');
  const detector = await FaceDetector.load();
  const m = { eyeDistance: [] as number[], eyeMouth: [] as number[], centreX: [] as number[], centreY: [] as number[] };
  for (const f of faces) {
    const { data } = await sharp(f)
      .resize(MEASURE_SIDE, MEASURE_SIDE, { fit: 'fill' })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    const lm = await detector.landmarksOfCrop(data, MEASURE_SIDE, MEASURE_SIDE);
    const eyeMid = { x: (lm.leftEye.x + lm.rightEye.x) / 2, y: (lm.leftEye.y + lm.rightEye.y) / 2 };
    m.eyeDistance.push(Math.hypot(lm.rightEye.x - lm.leftEye.x, lm.rightEye.y - lm.leftEye.y) / MEASURE_SIDE);
    m.eyeMouth.push(Math.hypot(lm.mouth.x - eyeMid.x, lm.mouth.y - eyeMid.y) / MEASURE_SIDE);
    m.centreX.push((eyeMid.x + lm.mouth.x) / 2 / MEASURE_SIDE);
    m.centreY.push((eyeMid.y + lm.mouth.y) / 2 / MEASURE_SIDE);
  }
  return {
    eyeDistance: median(m.eyeDistance),
    eyeMouth: median(m.eyeMouth),
    centreX: median(m.centreX),
    centreY: median(m.centreY),
    count: faces.length,
  };
}
