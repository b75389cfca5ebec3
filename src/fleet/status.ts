/**
 * The node status of the fleet's users (tinyfer-devices, tinyfer-command): what the connection
 * is doing, or why it is down, in at most 32 characters (src/runtime/status.ts).
 */
import { fitStatus } from '../runtime/status';
import type { ConnectionState } from './connection';

export interface NodeStatus {
  fill: 'red' | 'green' | 'yellow' | 'grey' | 'blue';
  shape: 'dot' | 'ring';
  text: string;
}

/** What a fleet user node reports about the connection (`failure`: FleetConnection.failure). */
export interface ConnectionView {
  state: ConnectionState | 'error';
  failure?: string;
  fellBack?: boolean;
}

/**
 * Connected: green, with "(MQTT 3.1.1 fallback)" (or shorter) after a fallback from 5. Down with a known reason: red,
 * the reason. Otherwise yellow (grey when closed), the state.
 */
export function connectionStatus(v: ConnectionView, connectedText = 'connected'): NodeStatus {
  if (v.state === 'connected') {
    const texts = v.fellBack ? [`${connectedText} (MQTT 3.1.1 fallback)`, `${connectedText} (MQTT 3.1.1)`, `${connectedText} (3.1.1)`] : [];
    return { fill: 'green', shape: 'dot', text: texts.find((t) => t.length <= 32) ?? fitStatus(connectedText) };
  }
  if (v.failure && v.state !== 'closed') return { fill: 'red', shape: 'ring', text: fitStatus(v.failure) };
  if (v.state === 'error') return { fill: 'red', shape: 'ring', text: 'no connection' };
  return { fill: v.state === 'closed' ? 'grey' : 'yellow', shape: 'ring', text: v.state };
}

/**
 * The device counts of tinyfer-devices, within 32 characters: online/offline, bad messages (of
 * which `spoofed` named another device than their topic) and frames dropped over the per-device
 * rate, in the longest form that fits.
 */
export function countsText(c: { online: number; offline: number; invalid?: number; spoofed?: number; framesDropped?: number }): string {
  const bad = c.invalid ? ` / ${c.invalid} bad msgs` : '';
  const spoof = c.spoofed ? ` (${c.spoofed} spoofed)` : '';
  const drop = c.framesDropped ? ` / ${c.framesDropped} over rate` : '';
  const short = `${c.online} on / ${c.offline} off${c.invalid ? ` / ${c.invalid} bad` : ''}`;
  const texts = [
    `${c.online} online / ${c.offline} offline${bad}${spoof}${drop}`,
    `${c.online} on / ${c.offline} off${bad}${spoof}${drop}`,
    `${short}${c.spoofed ? ` (${c.spoofed} spoof)` : ''}${drop}`,
    `${short}${drop}`,
    `${c.online} on/${c.offline} off${c.invalid ? `/${c.invalid} bad` : ''}${c.framesDropped ? `/${c.framesDropped} drop` : ''}`,
  ];
  return texts.find((t) => t.length <= 32) ?? fitStatus(c.framesDropped ? texts[4] : short);
}
