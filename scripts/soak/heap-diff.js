#!/usr/bin/env node
'use strict';
/**
 * What grew between two V8 heap snapshots (`npm run soak -- --heap-snapshots` writes them at the
 * end of warm-up and at the end): objects grouped by type and constructor / string kind, sorted by
 * the growth of their self size. Usage: node scripts/soak/heap-diff.js A.heapsnapshot B.heapsnapshot [top=25]
 */
const fs = require('node:fs');

/** { key -> { count, size } } over a snapshot's nodes. */
function aggregate(file) {
  const snap = JSON.parse(fs.readFileSync(file, 'utf8'));
  const meta = snap.snapshot && snap.snapshot.meta;
  if (!meta || !Array.isArray(snap.nodes) || !Array.isArray(snap.strings)) throw new Error(`${file}: not a V8 heap snapshot`);
  const f = meta.node_fields, n = f.length;
  const iType = f.indexOf('type'), iName = f.indexOf('name'), iSize = f.indexOf('self_size');
  const types = meta.node_types[iType];
  const out = new Map();
  for (let i = 0; i < snap.nodes.length; i += n) {
    const type = types[snap.nodes[i + iType]];
    let name = snap.strings[snap.nodes[i + iName]];
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = '(string)';
    else if (type === 'number') name = '(number)';
    else if (type === 'code') name = '(code)';
    else if (name.length > 60) name = name.slice(0, 57) + '...';
    const key = `${type}: ${name}`;
    const e = out.get(key) || { count: 0, size: 0 };
    e.count++;
    e.size += snap.nodes[i + iSize];
    out.set(key, e);
  }
  return out;
}

function diff(a, b) {
  const keys = new Set([...a.keys(), ...b.keys()]);
  return [...keys].map((k) => {
    const x = a.get(k) || { count: 0, size: 0 }, y = b.get(k) || { count: 0, size: 0 };
    return { key: k, dCount: y.count - x.count, dSize: y.size - x.size, count: y.count, size: y.size };
  }).sort((p, q) => q.dSize - p.dSize);
}

if (require.main === module) {
  const [fa, fb, topArg] = process.argv.slice(2);
  if (!fa || !fb) { console.error('usage: node scripts/soak/heap-diff.js A.heapsnapshot B.heapsnapshot [top]'); process.exit(2); }
  try {
    const a = aggregate(fa), b = aggregate(fb);
    const tot = (m) => [...m.values()].reduce((s, e) => s + e.size, 0);
    console.log(`self size ${(tot(a) / 1048576).toFixed(2)} -> ${(tot(b) / 1048576).toFixed(2)} MiB`);
    console.log('   d size (B)   d count     count  type: name');
    for (const r of diff(a, b).slice(0, Number(topArg) || 25)) console.log(`${String(r.dSize).padStart(12)} ${String(r.dCount).padStart(9)} ${String(r.count).padStart(9)}  ${r.key}`);
  } catch (e) {
    console.error(`heap-diff: ${e.message}`);
    process.exit(1);
  }
}

module.exports = { aggregate, diff };
