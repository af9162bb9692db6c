package onnx

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkOpen reads fixture models (make fixtures) from the page cache.
func BenchmarkOpen(b *testing.B) {
	for _, name := range []string{"resnet50", "vgg16", "transformer"} {
		p := filepath.Join(fixturesDir(), name+".onnx")
		if _, err := os.Stat(p); err != nil {
			continue
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := Open(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReadNodes reads a graph of 100,000 small nodes from memory
// (over DefaultBudget, so with a larger budget: it measures speed).
func BenchmarkReadNodes(b *testing.B) {
	g := pb{}.str(2, "g")
	for i := 0; i < 100000; i++ {
		g = g.msg(1, pb(nodePB("Add", []string{"x" + itoa(int64(i)), "c"}, []string{"x" + itoa(int64(i+1))})).str(3, "add"+itoa(int64(i))))
	}
	file := pb{}.varint(1, 8).msg(7, g).msg(8, opsetPB("", 13))
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := ReadWith(bytes.NewReader(file), int64(len(file)), Options{Budget: 1 << 30}); err != nil {
			b.Fatal(err)
		}
	}
}
