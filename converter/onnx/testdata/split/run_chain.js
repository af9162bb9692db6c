#!/usr/bin/env node
// Run a split model's parts in sequence in ONNX Runtime and compare the
// model outputs with the whole model's, on the same random inputs.
//
// Usage: node run_chain.js DIR MODEL [--dims name=N,...] [--opt LEVEL] [--seed N]
//        node run_chain.js --batch FILE [--dims ...] [--opt LEVEL] [--seed N]
//
// DIR holds manifest.json and the parts written by `trtd split`; MODEL is
// the model that was split. Symbolic and unknown input dims are set from
// --dims (default 2 for every name). --opt is ONNX Runtime's graph
// optimization level for every session (default "disabled", so both runs
// execute the same operators; "all" lets ORT fuse differently on each side
// of a cut). Finds onnxruntime-node through NODE_PATH (e.g.
// /var/cache/trtd-ort/node_modules). Prints one JSON object:
// {model, k, opt, outputs: [{name, part, shape, max_abs_diff}], max_abs_diff}.
// With --batch, FILE has one "DIR MODEL" pair a line (separated by a tab);
// prints one object a line, {dir, model, error} when a pair fails, where
// "whole_model_failed" says the model itself does not run in ONNX Runtime.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

ort.env.logLevel = 'error';

function usage() {
  console.error('usage: node run_chain.js DIR MODEL [--dims name=N,...] [--opt LEVEL] [--seed N]');
  process.exit(2);
}

const args = process.argv.slice(2);
const pos = [];
const opts = { dims: {}, opt: 'disabled', seed: 1, batch: '' };
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--dims') {
    for (const kv of (args[++i] || '').split(',').filter(Boolean)) {
      const [k, v] = kv.split('=');
      opts.dims[k] = parseInt(v, 10);
    }
  } else if (args[i] === '--opt') opts.opt = args[++i];
  else if (args[i] === '--seed') opts.seed = parseInt(args[++i], 10);
  else if (args[i] === '--batch') opts.batch = args[++i];
  else pos.push(args[i]);
}
if (opts.batch ? pos.length !== 0 : pos.length !== 2) usage();

// mulberry32: a small seeded generator, so runs are repeatable.
let state = opts.seed >>> 0;
function rand() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

const ctors = {
  FLOAT: ['float32', Float32Array], DOUBLE: ['float64', Float64Array],
  INT64: ['int64', BigInt64Array], INT32: ['int32', Int32Array],
  INT8: ['int8', Int8Array], UINT8: ['uint8', Uint8Array], BOOL: ['bool', Uint8Array],
};

function randomInput(info) {
  if (!info.shape) throw new Error(`input ${info.name}: unknown rank`);
  const dims = info.shape.map((d) => (typeof d === 'number' ? d : (opts.dims[d] || 2)));
  const n = dims.reduce((a, b) => a * b, 1);
  const c = ctors[info.dtype];
  if (!c) throw new Error(`input ${info.name}: dtype ${info.dtype} not supported here`);
  const data = new c[1](n);
  for (let i = 0; i < n; i++) {
    const r = rand() * 2 - 1;
    if (c[1] === BigInt64Array) data[i] = BigInt(Math.floor(r * 4));
    else if (c[0] === 'bool') data[i] = r > 0 ? 1 : 0;
    else if (c[1] === Float32Array || c[1] === Float64Array) data[i] = r;
    else data[i] = Math.floor(r * 4);
  }
  return new ort.Tensor(c[0], data, dims);
}

async function session(p) {
  return ort.InferenceSession.create(p, {
    graphOptimizationLevel: opts.opt, intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3,
  });
}

function maxAbsDiff(a, b) {
  if (a.dims.join(',') !== b.dims.join(',')) return { diff: Infinity, why: `shape ${a.dims} vs ${b.dims}` };
  let m = 0;
  for (let i = 0; i < a.data.length; i++) {
    const x = Number(a.data[i]); const y = Number(b.data[i]);
    if (Number.isNaN(x) !== Number.isNaN(y)) return { diff: Infinity, why: 'NaN mismatch' };
    if (!Number.isNaN(x)) m = Math.max(m, Math.abs(x - y));
  }
  return { diff: m };
}

async function compare(dir, modelPath) {
  state = opts.seed >>> 0;
  const man = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  const feeds = {};
  for (const inp of man.inputs) feeds[inp.name] = randomInput(inp);

  let whole;
  try {
    whole = await (await session(modelPath)).run(feeds);
  } catch (e) {
    e.wholeModel = true;
    throw e;
  }

  const partOut = [null];
  for (const p of man.parts) {
    const s = await session(path.join(dir, p.file));
    const f = {};
    for (const inp of p.inputs) {
      const v = inp.from_part === 0 ? feeds[inp.name] : partOut[inp.from_part][inp.name];
      if (!v) throw new Error(`part ${p.index}: input ${inp.name} (${inp.source}) has no value`);
      f[inp.name] = v;
    }
    const want = p.outputs.map((o) => o.name);
    const got = await s.run(f, want);
    partOut.push(got);
  }

  const res = { model: path.basename(modelPath), k: man.k, opt: opts.opt, outputs: [], max_abs_diff: 0 };
  for (const o of man.outputs) {
    const a = whole[o.name];
    const b = partOut[o.part][o.name];
    const d = maxAbsDiff(a, b);
    res.outputs.push({ name: o.name, part: o.part, shape: a.dims, max_abs_diff: d.diff, why: d.why });
    res.max_abs_diff = Math.max(res.max_abs_diff, d.diff);
  }
  return res;
}

async function main() {
  if (!opts.batch) {
    console.log(JSON.stringify(await compare(pos[0], pos[1])));
    return;
  }
  const lines = fs.readFileSync(opts.batch, 'utf8').split('\n').filter(Boolean);
  for (const line of lines) {
    const [dir, model] = line.split('\t');
    let res;
    try {
      res = await compare(dir, model);
    } catch (e) {
      res = { error: String(e.message || e).split('\n')[0], whole_model_failed: !!e.wholeModel };
    }
    res.dir = dir;
    res.model = model;
    console.log(JSON.stringify(res));
  }
}

main().catch((e) => { console.error(`run_chain.js: ${e.stack || e}`); process.exit(1); });
