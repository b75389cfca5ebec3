'use strict';
// Shared bits of the fleet tests: waiting for a condition (with a deadline, never a timing
// assertion) and the real faces the virtual devices send.
const path = require('node:path');
const { fer2013Dir, requireData } = require('./data');

/** Resolve once `cond()` is truthy; reject naming `what` after `timeoutMs`. */
function waitFor(cond, timeoutMs, what) {
    const until = Date.now() + timeoutMs;
    return new Promise((resolve, reject) => {
        const tick = () => {
            let v;
            try { v = cond(); } catch (e) { return reject(e); }
            if (v) return resolve(v);
            if (Date.now() > until) return reject(new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`));
            setTimeout(tick, 20);
        };
        tick();
    });
}

/** Real FER2013 PublicTest faces, `perLabel` of each label. */
function faces(perLabel) {
    const dir = path.join(fer2013Dir(), 'PublicTest');
    requireData(null, dir);
    return require('../../dist/fleet/simulator').loadFaces({ dir, perLabel });
}

function requireMosquitto() {
    const { mosquittoAvailable } = require('./mosquitto');
    if (!mosquittoAvailable()) throw new Error('the fleet tests need Mosquitto 2 at /usr/sbin/mosquitto (apt-get install mosquitto) or $MOSQUITTO');
}

module.exports = { waitFor, faces, requireMosquitto };
