#!/usr/bin/python3
"""Export real models to ONNX as test fixtures (never committed).

Usage: /usr/bin/python3 make_fixtures.py CACHE_DIR [--only NAME,NAME] [--force] [--list]

Writes CACHE_DIR/NAME.onnx for each model (stable names: resnet18.onnx,
resnet50.onnx, ...), with random weights (torchvision weights=None, no
downloads), opset 13 (the newest TensorRT 8.2 parses). A model whose file
exists is skipped unless --force. Files are written under a temporary name
and renamed, so an interrupted run leaves no partial model behind.

The default set is every model except the large ones (vgg16: 528 MB),
which are made only when named with --only. Needs Debian's python3-torch,
python3-torchvision and python3-onnx (run with /usr/bin/python3).
"""
import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings

import torch

warnings.filterwarnings("ignore", category=UserWarning)

OPSET = 13


def tv(name, **kw):
    def make():
        import torchvision
        return getattr(torchvision.models, name)(weights=None, **kw), (torch.randn(1, 3, 224, 224),), {}
    return make


def tv_seg(name, size=224):
    def make():
        import torchvision

        class Out(torch.nn.Module):  # segmentation models return a dict
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, x):
                return self.m(x)["out"]
        m = getattr(torchvision.models.segmentation, name)(weights=None, weights_backbone=None, aux_loss=False)
        return Out(m), (torch.randn(1, 3, size, size),), {}
    return make


def lstm():
    class LSTM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(input_size=32, hidden_size=64, num_layers=2, batch_first=True)
            self.fc = torch.nn.Linear(64, 10)

        def forward(self, x):
            y, _ = self.lstm(x)
            return self.fc(y)
    dyn = {"x": {0: "batch", 1: "seq"}, "y": {0: "batch", 1: "seq"}}
    return LSTM(), (torch.randn(2, 7, 32),), dyn


def transformer():
    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            layer = torch.nn.TransformerEncoderLayer(d_model=64, nhead=4, dim_feedforward=128, batch_first=True)
            self.enc = torch.nn.TransformerEncoder(layer, num_layers=2)
            self.head = torch.nn.Linear(64, 8)

        def forward(self, x):
            return self.head(self.enc(x))
    dyn = {"x": {0: "batch", 1: "seq"}, "y": {0: "batch", 1: "seq"}}
    return Encoder().eval(), (torch.randn(2, 5, 64),), dyn


# name -> (maker, default set?, external data?)
MODELS = {
    "resnet18": (tv("resnet18"), True, False),
    "resnet50": (tv("resnet50"), True, False),
    "mobilenet_v2": (tv("mobilenet_v2"), True, False),
    "mobilenet_v3_small": (tv("mobilenet_v3_small"), True, False),
    "efficientnet_b0": (tv("efficientnet_b0"), True, False),
    "squeezenet": (tv("squeezenet1_1"), True, False),
    "deeplabv3_mobilenet": (tv_seg("deeplabv3_mobilenet_v3_large"), True, False),
    "lstm": (lstm, True, False),
    "transformer": (transformer, True, False),
    "resnet18_external": (tv("resnet18"), True, True),
    "vgg16": (tv("vgg16"), False, False),
}


def export(name, out_dir):
    make, _, external = MODELS[name]
    torch.manual_seed(0)
    model, args, dyn = make()
    model.eval()
    final = os.path.join(out_dir, name + ".onnx")
    tmp = tempfile.mkdtemp(prefix=".tmp-" + name + "-", dir=out_dir)
    try:
        path = os.path.join(tmp, name + ".onnx")
        names = {}
        if dyn:
            names = {"input_names": ["x"], "output_names": ["y"], "dynamic_axes": dyn}
        # Gradients stay enabled: with them off, nn.TransformerEncoder takes
        # a fused fast path that has no ONNX export.
        torch.onnx.export(model, args, path, opset_version=OPSET, do_constant_folding=True, **names)
        if external:
            import onnx
            m = onnx.load(path)
            data = name + ".onnx.data"
            onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True,
                            location=data, size_threshold=1024)
            os.replace(os.path.join(tmp, data), os.path.join(out_dir, data))
        os.replace(path, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--only", default="", help="comma-separated model names")
    ap.add_argument("--force", action="store_true", help="export even if the file exists")
    ap.add_argument("--list", action="store_true", help="print the model names and exit")
    a = ap.parse_args()
    if a.list:
        for n, (_, default, _) in MODELS.items():
            print(n + ("" if default else " (only with --only)"))
        return 0
    names = [n for n, (_, default, _) in MODELS.items() if default]
    if a.only:
        names = [n.strip() for n in a.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in MODELS]
        if unknown:
            print("make_fixtures.py: unknown model(s): %s (known: %s)" % (", ".join(unknown), ", ".join(MODELS)), file=sys.stderr)
            return 2
    os.makedirs(a.dir, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for n in names:
        final = os.path.join(a.dir, n + ".onnx")
        if os.path.exists(final) and not a.force:
            continue
        t0 = time.time()
        export(n, a.dir)
        print("%-22s %6.1f s %8.1f MiB" % (n + ".onnx", time.time() - t0, os.path.getsize(final) / 2**20), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
