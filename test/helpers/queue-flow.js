'use strict';
// Shared bits of the input-queue tests (test/frame-queue.test.js, test/emotion-queue.test.js):
// one node under test with a Complete, a Catch and a Status node scoped to it, and what each of
// their helper nodes receives, keyed by the `seq` every input message carries.

/** The flow: node `id` of `type` (settings merged in) wired to helper `out`; Complete, Catch and Status scoped to it. */
function scopedFlow(type, id, settings, label) {
    const at = { z: 'tab', x: 100, y: 100 };
    return [
        { id: 'tab', type: 'tab', label },
        { id, type, ...at, ...settings, wires: [['out']] },
        { id: 'out', type: 'helper', ...at },
        { id: 'complete', type: 'complete', ...at, scope: [id], wires: [['completed']] },
        { id: 'completed', type: 'helper', ...at },
        { id: 'catch', type: 'catch', ...at, scope: [id], uncaught: false, wires: [['caught']] },
        { id: 'caught', type: 'helper', ...at },
        { id: 'status', type: 'status', ...at, scope: [id], wires: [['statuses']] },
        { id: 'statuses', type: 'helper', ...at },
    ];
}

/**
 * Record what the helper nodes of scopedFlow get: `out` as `record(msg)` (the caller keeps only
 * what it needs), completions counted per seq, caught errors, status texts.
 */
function watchScoped(helper, record) {
    const w = { out: [], completed: new Map(), caught: [], statuses: [] };
    helper.getNode('out').on('input', (m) => w.out.push(record(m)));
    helper.getNode('completed').on('input', (m) => w.completed.set(m.seq, (w.completed.get(m.seq) || 0) + 1));
    helper.getNode('caught').on('input', (m) => w.caught.push({ seq: m.seq, error: m.error.message }));
    helper.getNode('statuses').on('input', (m) => w.statuses.push(m.status.text));
    return w;
}

module.exports = { scopedFlow, watchScoped };
