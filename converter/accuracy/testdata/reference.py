# Reference reader for the accuracy tests: decodes ONNX TensorProto files
# (named as arguments, or one per line on stdin) with onnx.numpy_helper and
# prints, per file, the name, numpy dtype, shape, sha256 of the
# little-endian element bytes and the float64 sum of the finite values, all
# as one JSON object. Run with Debian's python3 (python3-onnx).
import hashlib, json, sys

import numpy as np
import onnx
from onnx import numpy_helper

out = {}
for path in sys.argv[1:] or sys.stdin.read().split("\n"):
    if not path:
        continue
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    try:
        a = numpy_helper.to_array(t)
    except Exception as e:  # noqa: BLE001
        out[path] = {"error": str(e)}
        continue
    if a.dtype.kind in "OUSc":
        out[path] = {"name": t.name, "dtype": str(a.dtype), "skip": True}
        continue
    shape = list(a.shape)  # before ascontiguousarray, which makes scalars 1-d
    a = np.ascontiguousarray(a)
    le = a.astype(a.dtype.newbyteorder("<"), copy=False)
    f = a.astype(np.float64)
    out[path] = {
        "name": t.name,
        "dtype": str(a.dtype),
        "shape": shape,
        "sha256": hashlib.sha256(le.tobytes()).hexdigest(),
        "sum": float(np.nansum(f[np.isfinite(f)])),
        "nonfinite": int(np.size(f) - np.count_nonzero(np.isfinite(f))),
    }
json.dump(out, sys.stdout)
