/**
 * The node settings table for the Node-RED editor. Each node's HTML loads
 * `tinyfer/settings.js` (served here on the admin API, from NODE_SETTINGS and the compiled
 * settingProblem itself), which defines `TinyFER.validate(type, name)`: the `validate` function of
 * a setting in the node's `defaults`. The editor so marks exactly the values the runtime refuses,
 * with the runtime's reason as the tooltip, and lists the bundled models.
 */
import { BUNDLED_MODELS } from '../engine/open';
import { NODE_SETTINGS } from './nodes';
import { settingProblem } from './spec';

/** The admin API path of the script (relative: the editor prefixes its API root). */
export const EDITOR_SCRIPT_PATH = 'tinyfer/settings.js';

/** The script the editor loads: the settings table, the check, and the validator factory. */
export function editorScript(): string {
  return `/* TinyFER node settings: generated from src/settings by the runtime that serves it. */
(function () {
"use strict";
var specs = ${JSON.stringify(NODE_SETTINGS)};
var settingProblem = ${settingProblem.toString()};
window.TinyFER = {
    specs: specs,
    bundledModels: ${JSON.stringify(BUNDLED_MODELS)},
    problem: function (type, name, value) {
        var p = settingProblem(specs[type][name], value);
        return p === null ? null : name + " " + p;
    },
    validate: function (type, name) {
        if (!specs[type] || !specs[type][name]) { throw new Error("TinyFER: no setting " + type + "." + name); }
        return function (value, opt) {
            var p = window.TinyFER.problem(type, name, value);
            return p === null ? true : p;
        };
    }
};
})();
`;
}

interface AdminApp {
  get(path: string, handler: (req: unknown, res: { type(t: string): { send(body: string): void }; set(h: string, v: string): unknown }) => void): void;
}

const served = new WeakSet<object>();

/** Serve the script on the admin API once per Node-RED runtime (each node file calls this). */
export function serveEditorSettings(RED: { httpAdmin?: AdminApp }): void {
  const app = RED.httpAdmin;
  if (!app || served.has(app)) return;
  served.add(app);
  const body = editorScript();
  app.get('/' + EDITOR_SCRIPT_PATH, (_req, res) => {
    res.set('Cache-Control', 'no-cache');
    res.type('application/javascript').send(body);
  });
}
