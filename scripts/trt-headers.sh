#!/usr/bin/env bash
# Lays out the public TensorRT headers that `make check-trt` compiles the cgo
# worker against, one set per supported release, from NVIDIA's own
# repositories at pinned commits. It downloads and extracts headers only: it
# builds nothing, and nothing it writes belongs in this repository.
#
# usage: scripts/trt-headers.sh OUT_DIR
#   writes OUT_DIR/<version>/include (NvInfer*.h and the matching
#   NvOnnxParser.h) and OUT_DIR/cudastub/cuda_runtime_api.h
# environment:
#   TRT_GIT       git URL or directory of NVIDIA/TensorRT (default: GitHub)
#   ONNX_TRT_GIT  git URL or directory of onnx/onnx-tensorrt (default: GitHub)
#
# Then: make check-trt TRT_HEADERS=OUT_DIR
set -euo pipefail
out=${1:?usage: scripts/trt-headers.sh OUT_DIR}
trt_git=${TRT_GIT:-https://github.com/NVIDIA/TensorRT.git}
onnx_git=${ONNX_TRT_GIT:-https://github.com/onnx/onnx-tensorrt.git}

# version  expected NvInferVersion  NVIDIA/TensorRT commit (branch)        onnx-tensorrt commit for NvOnnxParser.h (tag), "-" = in the TensorRT tree
pins='
8.0  8.0.1  08db8ef53c14f45326d742d2672bc2881d961ea9 3f211d67a6b31b9c7ff0db00b0365bebee697557
8.2  8.2.3  f5f4e6f2e2eeccce2021283680ed46cdad42350d f42daeee49f2517a954c5601f0f76bef9ed94b62
8.6  8.6.1  a0215c1a16c6413c7ac566a498871a4fa36f6f62 ee0b139bc68567a89618c1d84dcd461cc144aad4
10.0 10.0.1 ccf119972b50299ba00d35d39f3938296e187f4e 73f629e04a68765647010b98dd94257282d05d11
11.1 11.1.0 905361629f22836090d75ea77cba732a25107148 -
'
# The commits: release/8.0, release/8.2, release/8.6, release/10.0 and
# release/11.1 of NVIDIA/TensorRT; 8.0-GA, 8.2-GA, 8.6-GA and 10.0-GA of
# onnx/onnx-tensorrt.

cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
git init -q --bare "$cache/trt"
git init -q --bare "$cache/onnx"

# fetch REPO_DIR URL COMMIT: one commit, shallow (GitHub serves commits by id).
fetch() { git -C "$1" fetch -q --depth 1 "$2" "$3"; }

version_of() { # the dotted version NvInferVersion.h declares
  grep -E '^#define (NV_TENSORRT|TRT)_(MAJOR|MINOR|PATCH)(_ENTERPRISE)? +[0-9]+' "$1" | awk '{print $3}' | paste -sd. -
}

mkdir -p "$out/cudastub"
# Only the CUDA types the TensorRT headers name; the worker loads the CUDA
# runtime with dlopen and never includes its real header.
cat > "$out/cudastub/cuda_runtime_api.h" <<'H'
#pragma once
typedef struct CUstream_st* cudaStream_t;
typedef struct CUevent_st* cudaEvent_t;
typedef int cudaError_t;
H
while read -r v want trt onnx; do
  [ -n "$v" ] || continue
  fetch "$cache/trt" "$trt_git" "$trt"
  rm -rf "${out:?}/$v"; mkdir -p "$out/$v"
  git -C "$cache/trt" archive "$trt" include | tar -x -C "$out/$v"
  if [ "$onnx" != - ]; then
    fetch "$cache/onnx" "$onnx_git" "$onnx"
    git -C "$cache/onnx" show "$onnx:NvOnnxParser.h" > "$out/$v/include/NvOnnxParser.h"
  fi
  test -f "$out/$v/include/NvOnnxParser.h" || { echo "trt-headers: no NvOnnxParser.h for $v" >&2; exit 1; }
  got=$(version_of "$out/$v/include/NvInferVersion.h")
  test "$got" = "$want" || { echo "trt-headers: $v: NvInferVersion.h says $got, want $want" >&2; exit 1; }
  echo "$out/$v/include: TensorRT $got"
done <<< "$pins"
