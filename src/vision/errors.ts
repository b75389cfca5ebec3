/**
 * The one error type of the vision pipeline. `code` lets flows (and tests) tell the cases
 * apart without parsing the message; the message itself says what was wrong and what to do.
 */
export type VisionErrorCode =
  | 'E_INPUT_TYPE' // not a Buffer, path or data URL
  | 'E_EMPTY' // zero bytes
  | 'E_TOO_LARGE' // over the byte or pixel limit
  | 'E_FORMAT' // not a JPEG/PNG/WebP/TIFF
  | 'E_DECODE' // truncated or corrupt image data
  | 'E_FILE' // a path that cannot be read
  | 'E_FILE_PATH' // a path where the node's setting does not accept file paths
  | 'E_FACES' // a msg.faces entry that is not a valid face
  | 'E_KEEP_FACES' // msg.keepFaces / msg.keepTracks (faces left in the clear) of the wrong type
  | 'E_DETECTOR'; // the face detector's worker thread failed to load, crashed or was closed

export class VisionError extends Error {
  readonly code: VisionErrorCode;
  constructor(code: VisionErrorCode, message: string) {
    super(message);
    this.name = 'VisionError';
    this.code = code;
  }
}

/** First line of any thrown value, for wrapping library errors into ours. */
export function reason(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n')[0];
}
