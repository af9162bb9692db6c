// Command vgg16like writes an ONNX model with vgg16's graph and tensor
// sizes (13 3×3 convolutions, 3 fully-connected layers, 528 MiB of float
// weights) filled with pseudo-random bytes, for benchmarking the splitter
// on machines without torch. Usage: vgg16like OUT.onnx
package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"

	"google.golang.org/protobuf/encoding/protowire"
)

type msg []byte

func (m msg) str(n protowire.Number, s string) msg {
	return protowire.AppendString(protowire.AppendTag(m, n, protowire.BytesType), s)
}

func (m msg) sub(n protowire.Number, b []byte) msg {
	return protowire.AppendBytes(protowire.AppendTag(m, n, protowire.BytesType), b)
}

func (m msg) num(n protowire.Number, v uint64) msg {
	return protowire.AppendVarint(protowire.AppendTag(m, n, protowire.VarintType), v)
}

func ints(name string, v ...int64) msg {
	var p []byte
	for _, x := range v {
		p = protowire.AppendVarint(p, uint64(x))
	}
	return msg{}.str(1, name).num(20, 7).sub(8, p)
}

func node(op, name string, in, out []string, attrs ...msg) msg {
	var n msg
	for _, s := range in {
		n = n.str(1, s)
	}
	for _, s := range out {
		n = n.str(2, s)
	}
	n = n.str(3, name).str(4, op)
	for _, a := range attrs {
		n = n.sub(5, a)
	}
	return n
}

func valueInfo(name string, dims ...int64) msg {
	var shape msg
	for _, d := range dims {
		shape = shape.sub(1, msg{}.num(1, uint64(d)))
	}
	tt := msg{}.num(1, 1).sub(2, shape)
	return msg{}.str(1, name).sub(2, msg{}.sub(1, tt))
}

type initT struct {
	name string
	dims []int64
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: vgg16like OUT.onnx")
		os.Exit(2)
	}
	var nodes []msg
	var inits []initT
	x, c := "input", int64(3)
	for i, v := range []int64{64, 64, -1, 128, 128, -1, 256, 256, 256, -1, 512, 512, 512, -1, 512, 512, 512, -1} {
		if v < 0 {
			nodes = append(nodes, node("MaxPool", fmt.Sprintf("pool%d", i), []string{x}, []string{fmt.Sprintf("p%d", i)},
				ints("kernel_shape", 2, 2), ints("strides", 2, 2)))
			x = fmt.Sprintf("p%d", i)
			continue
		}
		w, b := fmt.Sprintf("conv%d.weight", i), fmt.Sprintf("conv%d.bias", i)
		inits = append(inits, initT{w, []int64{v, c, 3, 3}}, initT{b, []int64{v}})
		nodes = append(nodes,
			node("Conv", fmt.Sprintf("conv%d", i), []string{x, w, b}, []string{fmt.Sprintf("c%d", i)},
				ints("kernel_shape", 3, 3), ints("pads", 1, 1, 1, 1)),
			node("Relu", fmt.Sprintf("relu%d", i), []string{fmt.Sprintf("c%d", i)}, []string{fmt.Sprintf("r%d", i)}))
		x, c = fmt.Sprintf("r%d", i), v
	}
	nodes = append(nodes, node("Flatten", "flatten", []string{x}, []string{"flat"}))
	x, in := "flat", int64(25088)
	for i, out := range []int64{4096, 4096, 1000} {
		w, b := fmt.Sprintf("fc%d.weight", i), fmt.Sprintf("fc%d.bias", i)
		inits = append(inits, initT{w, []int64{out, in}}, initT{b, []int64{out}})
		y := fmt.Sprintf("fc%d", i)
		if i == 2 {
			y = "output"
		}
		nodes = append(nodes, node("Gemm", y, []string{x, w, b}, []string{y}, msg{}.str(1, "transB").num(20, 2).num(3, 1)))
		x, in = y, out
		if i < 2 {
			nodes = append(nodes, node("Relu", y+".relu", []string{y}, []string{y + "r"}))
			x = y + "r"
		}
	}

	// The graph: small fields in memory, initializer data streamed.
	var head msg
	head = head.str(2, "vgg16like")
	for _, n := range nodes {
		head = head.sub(1, n)
	}
	tail := msg{}.sub(11, valueInfo("input", 1, 3, 224, 224)).sub(12, valueInfo("output", 1, 1000))
	type initHdr struct {
		hdr []byte
		n   int64
	}
	var hdrs []initHdr
	glen := int64(len(head) + len(tail))
	for _, t := range inits {
		n := int64(4)
		var dims []byte
		for _, d := range t.dims {
			n *= d
			dims = protowire.AppendVarint(dims, uint64(d))
		}
		tp := msg{}.sub(1, dims).num(2, 1).str(8, t.name)
		tp = protowire.AppendTag(tp, 9, protowire.BytesType)
		tp = protowire.AppendVarint(tp, uint64(n))
		hdr := protowire.AppendTag(nil, 5, protowire.BytesType)
		hdr = protowire.AppendVarint(hdr, uint64(int64(len(tp))+n))
		hdr = append(hdr, tp...)
		hdrs = append(hdrs, initHdr{hdr, n})
		glen += int64(len(hdr)) + n
	}
	f, err := os.Create(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	model := msg{}.num(1, 7).str(2, "vgg16like").sub(8, msg{}.num(2, 13))
	model = protowire.AppendTag(model, 7, protowire.BytesType)
	model = protowire.AppendVarint(model, uint64(glen))
	w.Write(model)
	w.Write(head)
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 1<<20)
	for _, h := range hdrs {
		w.Write(h.hdr)
		for left := h.n; left > 0; {
			k := min(left, int64(len(buf)))
			for i := int64(0); i+8 <= k; i += 8 {
				v := rng.Uint64() & 0x3fff_ffff_3fff_ffff // finite floats
				for j := range int64(8) {
					buf[i+j] = byte(v >> (8 * j))
				}
			}
			w.Write(buf[:k])
			left -= k
		}
	}
	w.Write(tail)
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
