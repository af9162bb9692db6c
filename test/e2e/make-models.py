#!/usr/bin/python3
"""Write the e2e test's models: torchvision's SqueezeNet 1.1 (random weights,
no download) exported to ONNX once, then variants that differ in one weight
each, so every upload is a distinct job (the job id hashes the content).

Usage: make-models.py OUTDIR N   -> OUTDIR/model-1.onnx .. model-N.onnx
Runs with Debian's python3-torch, python3-torchvision and python3-onnx.
"""
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def export(path):
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.squeezenet1_1(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    torch.onnx.export(model, x, path, opset_version=13,
                      input_names=["input"], output_names=["logits"])


def main():
    out, n = sys.argv[1], int(sys.argv[2])
    os.makedirs(out, exist_ok=True)
    base = os.path.join(out, "squeezenet1_1.onnx")
    if not os.path.exists(base):
        export(base + ".tmp")
        os.rename(base + ".tmp", base)
    for i in range(1, n + 1):
        m = onnx.load(base)
        init = m.graph.initializer[-1]
        a = numpy_helper.to_array(init).copy()
        a.flat[0] = float(i)
        init.CopyFrom(numpy_helper.from_array(a, init.name))
        onnx.checker.check_model(m)
        dst = os.path.join(out, "model-%d.onnx" % i)
        onnx.save(m, dst + ".tmp")
        os.rename(dst + ".tmp", dst)


if __name__ == "__main__":
    main()
