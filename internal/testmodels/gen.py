#!/usr/bin/python3
"""Writes the small real ONNX models trtd's tests use (run with Debian's
python3-onnx: /usr/bin/python3 gen.py). Deterministic: fixed seeds."""
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

rng = np.random.default_rng(7)

def conv_net(name, channels, size, dynamic_batch):
    batch = "N" if dynamic_batch else 1
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, size, size])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 10])
    w1 = numpy_helper.from_array(rng.standard_normal((channels, 3, 3, 3)).astype(np.float32), "conv1.weight")
    b1 = numpy_helper.from_array(rng.standard_normal((channels,)).astype(np.float32), "conv1.bias")
    w2 = numpy_helper.from_array(rng.standard_normal((channels, channels, 3, 3)).astype(np.float32), "conv2.weight")
    fc = numpy_helper.from_array(rng.standard_normal((channels, 10)).astype(np.float32), "fc.weight")
    nodes = [
        helper.make_node("Conv", ["input", "conv1.weight", "conv1.bias"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "conv2.weight"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "fc.weight"], ["logits"], name="fc"),
    ]
    g = helper.make_graph(nodes, name, [x], [y], [w1, b1, w2, fc])
    m = helper.make_model(g, producer_name="trtd-tests", producer_version="1", opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, name + ".onnx")

conv_net("tiny_cnn", 16, 32, False)        # ~12 KB
conv_net("small_cnn", 96, 64, True)         # ~340 KB, dynamic batch
