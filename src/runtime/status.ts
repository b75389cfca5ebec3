/**
 * Node status texts: at most STATUS_MAX characters (what the editor shows under a node without
 * cutting), never cut inside a word. Errors show a short reason (a setting's name, a vision error
 * code's meaning, a fleet failure); the full message goes to node.error / done(err).
 */
import { VisionError, type VisionErrorCode } from '../vision/errors';

export const STATUS_MAX = 32;

/** `text` on one line, shortened at a word boundary with an ellipsis when longer than `max`. */
export function fitStatus(text: string, max = STATUS_MAX): string {
  const t = String(text).replace(/\s+/g, ' ').trim();
  if (t.length <= max) return t;
  const room = t.slice(0, max - 1);
  const cut = room.lastIndexOf(' ');
  return (cut > 0 ? room.slice(0, cut) : room).replace(/[\s,:;(\-"']+$/, '') + '\u2026';
}

const VISION_STATUS: Record<VisionErrorCode, string> = {
  E_INPUT_TYPE: 'not an image input',
  E_EMPTY: 'empty image',
  E_TOO_LARGE: 'image over the size limit',
  E_FORMAT: 'not a JPEG/PNG/WebP/TIFF',
  E_DECODE: 'corrupt image data',
  E_FILE: 'cannot read the image file',
  E_FILE_PATH: 'file paths are off',
  E_FACES: 'bad msg.faces',
  E_KEEP_FACES: 'bad msg.keepFaces/keepTracks',
  E_DETECTOR: 'face detector failed',
};

/** An error that carries its own status text (<= STATUS_MAX). */
export interface StatusError extends Error {
  status?: string;
}

/** Attach a short status text to an error (checked to fit) and return it. */
export function withStatus<E extends Error>(err: E, status: string): E & { status: string } {
  if (status.length > STATUS_MAX) throw new RangeError(`status text over ${STATUS_MAX} characters: ${status}`);
  return Object.assign(err, { status });
}

/** The status text of a failure: its own, a vision error's, "bad setting: <name>", or the message fitted. */
export function errorStatus(err: unknown): string {
  const e = err as StatusError;
  if (e && typeof e.status === 'string' && e.status) return fitStatus(e.status);
  if (err instanceof VisionError) return VISION_STATUS[err.code] ?? fitStatus(err.message);
  const msg = err instanceof Error ? err.message : String(err);
  if (err instanceof RangeError) {
    const m = /^(?:detector |smoothing )?([A-Za-z]\w*) (?:must|is required)/.exec(msg);
    if (m) return fitStatus(`bad setting: ${m[1]}`);
  }
  return fitStatus(msg);
}

/** A count in at most 4 characters: 999, 1.2k, 12k, 999k, 1.2M, 12M... */
export function shortCount(n: number): string {
  if (n < 1000) return String(n);
  for (const [div, unit] of [[1e3, 'k'], [1e6, 'M'], [1e9, 'G']] as const) {
    const v = n / div;
    if (v < 9.95) return v.toFixed(1) + unit;
    if (v < 999.5) return Math.round(v) + unit;
  }
  return '>1T';
}

/**
 * A node's status with its rate and (when any) the messages its input queue dropped:
 * "<what> | 4.5 msg/s | 12 dropped", shortened to "<what> | 12.5/s | 1.2k dropped", then without
 * the rate ("<what> | 1.2k dropped") when it would not fit in STATUS_MAX.
 */
export function rateStatusText(what: string, perSecond: number, dropped: number): string {
  const rate = perSecond.toFixed(1);
  const drops = dropped > 0 ? ` | ${shortCount(dropped)} dropped` : '';
  for (const t of [`${what} | ${rate} msg/s${drops}`, `${what} | ${rate}/s${drops}`]) if (t.length <= STATUS_MAX) return t;
  return fitStatus(drops ? `${what}${drops}` : `${what} | ${rate}/s`);
}

/**
 * tinyfer-frame's status: the faces of the last frame, the rate, and (when any) the frames
 * dropped (a full input queue, a chunked source over its rate): "1 face | 4.5 msg/s | 12
 * dropped", shortened as rateStatusText does ("10 faces | 1.2k dropped").
 */
export function frameStatusText(faces: number, perSecond: number, dropped: number): string {
  return rateStatusText(faces === 0 ? 'no face' : faces === 1 ? '1 face' : `${faces} faces`, perSecond, dropped);
}

/**
 * tinyfer-emotion's status: the last emotion sent (of the largest face) and its confidence, or
 * "no face", the rate and (when any) the messages its full input queue dropped: "happy 87% |
 * 4.5/s | 12 dropped" (shortened as rateStatusText does).
 */
export function emotionStatusText(last: { emotion: string | null; confidence: number } | undefined, perSecond: number, dropped: number): string {
  const what = last && last.emotion ? `${last.emotion} ${Math.round(last.confidence * 100)}%` : 'no face';
  return rateStatusText(what, perSecond, dropped);
}
