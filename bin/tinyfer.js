#!/usr/bin/env node
'use strict';
// The `tinyfer` CLI: see src/cli/tinyfer.ts (compiled to dist/ by `npm run build`).
// TensorFlow's C++ logging would otherwise flood stderr.
process.env.TF_CPP_MIN_LOG_LEVEL = process.env.TF_CPP_MIN_LOG_LEVEL || '2';
require('../dist/cli/tinyfer').main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
