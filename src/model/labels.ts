/**
 * The emotion labels, in model output order. This is the one place that fixes them:
 * the network's classifier, the blob format, the C core and every node use this order.
 */
export const LABELS = ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'] as const;
export type Label = (typeof LABELS)[number];
export const NUM_CLASSES = LABELS.length;
/** Side of the square grayscale face the model takes. */
export const FACE_SIZE = 48;
export const FACE_PIXELS = FACE_SIZE * FACE_SIZE;

/** Folder / dataset label names mapped onto our labels (FER2013, CK+, JAFFE spellings). */
const ALIASES: Record<string, Label> = {
  angry: 'angry', anger: 'angry', an: 'angry',
  disgust: 'disgust', disgusted: 'disgust', di: 'disgust',
  fear: 'fear', fearful: 'fear', scared: 'fear', fe: 'fear',
  happy: 'happy', happiness: 'happy', joy: 'happy', ha: 'happy',
  sad: 'sad', sadness: 'sad', sa: 'sad',
  surprise: 'surprise', surprised: 'surprise', su: 'surprise',
  neutral: 'neutral', ne: 'neutral',
};

/** Map a dataset's label spelling onto a class index, or -1 when it is not one of ours (e.g. CK+ contempt). */
export function labelIndex(name: string): number {
  const l = ALIASES[name.trim().toLowerCase()];
  return l === undefined ? -1 : LABELS.indexOf(l);
}
