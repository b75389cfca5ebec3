/**
 * How a face dataset frames its faces: where the eyes and mouth sit, as fractions of the
 * side, measured with the same detector keypoints the pipeline crops with. This is how
 * FER_FRAMING (crop.ts) was obtained from FER2013, and how tests check it still holds.
 */
import sharp from 'sharp';
import { FaceDetector } from './detector';

export interface Framing {
  eyeDistance: number;
  eyeMouth: number;
  centreX: number;
  centreY: number;
  /** Faces measured (the detector found a face in them). */
  count: number;
  /** Faces given in which no face was found. */
  missed: number;
}

/** Each face is scaled to FACE_SIDE and centred on a mid-grey canvas of CANVAS_SIDE (as if pasted into a frame). */
const FACE_SIDE = 96;
const CANVAS_SIDE = 192;

function median(v: number[]): number {
  const s = v.slice().sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Median framing of square face crops (image files or encoded buffers). */
export async function measureFraming(faces: Array<string | Buffer>): Promise<Framing> {
  if (faces.length === 0) throw new RangeError('measureFraming needs at least one face');
  const detector = await FaceDetector.load();
  const m = { eyeDistance: [] as number[], eyeMouth: [] as number[], centreX: [] as number[], centreY: [] as number[] };
  const pad = (CANVAS_SIDE - FACE_SIDE) / 2;
  for (const f of faces) {
    const { data } = await sharp(f)
      .resize(FACE_SIDE, FACE_SIDE, { fit: 'fill' })
      .extend({ top: pad, bottom: pad, left: pad, right: pad, background: '#808080' })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    const found = await detector.detect(data, CANVAS_SIDE, CANVAS_SIDE, {
      inputSize: CANVAS_SIDE,
      fallbackSize: 0,
      scoreThreshold: 0.5,
      maxFaces: 1,
      landmarks: true,
    });
    if (found.length === 0) continue;
    const at = (p: { x: number; y: number }) => ({ x: (p.x - pad) / FACE_SIDE, y: (p.y - pad) / FACE_SIDE });
    const lm = found[0].landmarks;
    const [le, re, mouth] = [at(lm.leftEye), at(lm.rightEye), at(lm.mouth)];
    const eyeMid = { x: (le.x + re.x) / 2, y: (le.y + re.y) / 2 };
    m.eyeDistance.push(Math.hypot(re.x - le.x, re.y - le.y));
    m.eyeMouth.push(Math.hypot(mouth.x - eyeMid.x, mouth.y - eyeMid.y));
    m.centreX.push((eyeMid.x + mouth.x) / 2);
    m.centreY.push((eyeMid.y + mouth.y) / 2);
  }
  const count = m.eyeDistance.length;
  if (count === 0) throw new Error(`no face found in any of the ${faces.length} images`);
  return {
    eyeDistance: median(m.eyeDistance),
    eyeMouth: median(m.eyeMouth),
    centreX: median(m.centreX),
    centreY: median(m.centreY),
    count,
    missed: faces.length - count,
  };
}
