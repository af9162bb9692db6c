#!/usr/bin/python3
"""Check every part of a split model with python3-onnx.

Usage: /usr/bin/python3 check_parts.py DIR...

Each DIR holds manifest.json and part1.onnx .. partK.onnx as written by
`trtd split`. For each part: onnx.checker.check_model with full_check (which
also runs ONNX shape inference in strict mode), and the part's graph inputs
and outputs (initializers aside) must be exactly the manifest's, with the
manifest's types. Prints one JSON object per part ({"dir", "part", "ok",
"error"}) and exits 1 if any part fails.
"""
import json
import os
import sys

import onnx

TYPES = {v: k for k, v in onnx.TensorProto.DataType.items()}


def type_str(t):
    """The type as the manifest writes dtypes (FLOAT, seq(FLOAT), ...)."""
    kind = t.WhichOneof("value")
    if kind == "tensor_type":
        return TYPES.get(t.tensor_type.elem_type)
    if kind == "sparse_tensor_type":
        return "sparse(%s)" % TYPES.get(t.sparse_tensor_type.elem_type)
    if kind == "sequence_type":
        return "seq(%s)" % type_str(t.sequence_type.elem_type)
    if kind == "optional_type":
        return "optional(%s)" % type_str(t.optional_type.elem_type)
    if kind == "map_type":
        return "map(%s,%s)" % (TYPES.get(t.map_type.key_type), type_str(t.map_type.value_type))
    return ""


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    bad = 0
    for d in sys.argv[1:]:
        bad += check_dir(d)
    return 1 if bad else 0


def check_dir(d):
    with open(os.path.join(d, "manifest.json")) as f:
        man = json.load(f)
    bad = 0
    for p in man["parts"]:
        path = os.path.join(d, p["file"])
        res = {"dir": d, "part": p["index"], "file": p["file"], "ok": True}
        try:
            onnx.checker.check_model(path, full_check=True)
            m = onnx.load(path)
            inits = {t.name for t in m.graph.initializer}
            ins = [(i.name, type_str(i.type)) for i in m.graph.input if i.name not in inits]
            outs = [(o.name, type_str(o.type)) for o in m.graph.output]
            want_in = [(i["name"], i["dtype"]) for i in p["inputs"]]
            want_out = [(o["name"], o["dtype"]) for o in p["outputs"]]
            if ins != want_in:
                raise ValueError("inputs %s, manifest says %s" % (ins, want_in))
            if outs != want_out:
                raise ValueError("outputs %s, manifest says %s" % (outs, want_out))
            res["nodes"] = len(m.graph.node)
            res["initializers"] = len(m.graph.initializer)
            if res["nodes"] < p["nodes"]:
                raise ValueError("%d nodes, manifest says %d" % (res["nodes"], p["nodes"]))
        except Exception as e:  # report every part, then fail
            res["ok"] = False
            res["error"] = "%s: %s" % (type(e).__name__, str(e).strip().splitlines()[0] if str(e).strip() else "")
            bad += 1
        print(json.dumps(res), flush=True)
    return bad


if __name__ == "__main__":
    sys.exit(main())
