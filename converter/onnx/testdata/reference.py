#!/usr/bin/python3
"""Reference summaries of ONNX models, computed with Debian's python3-onnx.

Reads model paths (arguments, or one per line on stdin with "-") and prints
one JSON object per line: {"path": P, "summary": {...}} or
{"path": P, "error": "..."}. The summary holds the fields of
`trtd inspect --json` that the Go conformance test compares exactly:
ir_version, opset, producer, inputs, outputs, node_count, op_counts,
initializers. External data is not loaded (only its size is computed).

Run with /usr/bin/python3 (Debian's onnx), not a pyenv python.
"""
import json
import re
import sys

import onnx

# Element size in bits per TensorProto.DataType number; STRING and unknown
# types have no fixed size. Mirrors converter/onnx/model.go.
BITS = {
    1: 32, 2: 8, 3: 8, 4: 16, 5: 16, 6: 32, 7: 64, 9: 8, 10: 16, 11: 64,
    12: 32, 13: 64, 14: 64, 15: 128, 16: 16, 17: 8, 18: 8, 19: 8, 20: 8,
    21: 4, 22: 4, 23: 4, 24: 8, 25: 2, 26: 2,
}
NAMES = {
    0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16",
    5: "INT16", 6: "INT32", 7: "INT64", 8: "STRING", 9: "BOOL",
    10: "FLOAT16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64",
    14: "COMPLEX64", 15: "COMPLEX128", 16: "BFLOAT16", 17: "FLOAT8E4M3FN",
    18: "FLOAT8E4M3FNUZ", 19: "FLOAT8E5M2", 20: "FLOAT8E5M2FNUZ",
    21: "UINT4", 22: "INT4", 23: "FLOAT4E2M1", 24: "FLOAT8E8M0",
    25: "UINT2", 26: "INT2",
}
MAXI64 = (1 << 63) - 1


def dtype_name(n):
    return NAMES.get(n, str(n))


def type_str(t):
    kind = t.WhichOneof("value")
    if kind == "tensor_type":
        return dtype_name(t.tensor_type.elem_type)
    if kind == "sparse_tensor_type":
        return "sparse(%s)" % dtype_name(t.sparse_tensor_type.elem_type)
    if kind == "sequence_type":
        return "seq(%s)" % type_str(t.sequence_type.elem_type)
    if kind == "optional_type":
        return "optional(%s)" % type_str(t.optional_type.elem_type)
    if kind == "map_type":
        return "map(%s,%s)" % (dtype_name(t.map_type.key_type), type_str(t.map_type.value_type))
    if kind == "opaque_type":
        return "opaque(%s.%s)" % (t.opaque_type.domain, t.opaque_type.name)
    return ""


def shape(t):
    kind = t.WhichOneof("value")
    if kind not in ("tensor_type", "sparse_tensor_type"):
        return None
    tt = getattr(t, kind)
    if not tt.HasField("shape"):
        return None
    dims = []
    for d in tt.shape.dim:
        which = d.WhichOneof("value")
        if which == "dim_value":
            dims.append(d.dim_value)
        elif which == "dim_param":
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return dims


def value(v):
    if v.HasField("type"):
        return {"name": v.name, "dtype": type_str(v.type), "shape": shape(v.type)}
    return {"name": v.name, "dtype": "", "shape": None}


def tensor_bytes(t):
    if t.data_type == 8:  # STRING
        return sum(len(s) for s in t.string_data)
    n = 1
    for d in t.dims:
        if d < 0:
            n = 0
            break
        n *= d
    n = min(n, MAXI64)
    bits = BITS.get(t.data_type, 0)
    if bits == 0 or n <= 0:
        return 0
    if n > MAXI64 // bits:
        return MAXI64
    return (n * bits + 7) // 8


def summary(m):
    g = m.graph
    init = {t.name for t in g.initializer} | {s.values.name for s in g.sparse_initializer}
    opset = {}
    for o in m.opset_import:
        opset["" if o.domain in ("", "ai.onnx") else o.domain] = o.version
    ops = {}
    for n in g.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    total = 0
    for t in g.initializer:
        total = min(total + tensor_bytes(t), MAXI64)
    return {
        "ir_version": m.ir_version,
        "opset": opset,
        "producer": {"name": m.producer_name, "version": m.producer_version},
        "inputs": [value(v) for v in g.input if v.name not in init],
        "outputs": [value(v) for v in g.output],
        "node_count": len(g.node),
        "op_counts": ops,
        "initializers": {"count": len(g.initializer), "bytes": total},
    }


def text(o):
    """Strings that are not valid UTF-8 come back from protobuf as bytes:
    render them as Go's encoding/json does (each bad byte -> U+FFFD)."""
    if isinstance(o, bytes):
        return re.sub("[\udc80-\udcff]", "\ufffd", o.decode("utf-8", "surrogateescape"))
    if isinstance(o, dict):
        return {text(k): text(v) for k, v in o.items()}
    if isinstance(o, list):
        return [text(v) for v in o]
    return o


def main(argv):
    paths = argv[1:]
    if paths == ["-"]:
        paths = [l.rstrip("\n") for l in sys.stdin if l.strip()]
    for p in paths:
        try:
            m = onnx.load(p, load_external_data=False)
            out = {"path": p, "summary": text(summary(m))}
        except Exception as e:  # a file python-onnx refuses is reported, not fatal
            out = {"path": p, "error": "%s: %s" % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(out, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv)
