package safetext

import (
	"io"
	"strings"
	"testing"
)

func TestTerminal(t *testing.T) {
	for in, want := range map[string]string{
		"resnet18.onnx":                    "resnet18.onnx",
		"\x1b]52;c;cm0gLXJmIH4=\x07x.onnx": `\x1b]52;c;cm0gLXJmIH4=\x07x.onnx`,
		"\x1b[2J\x1b[31mowned.onnx":        `\x1b[2J\x1b[31mowned.onnx`,
		"a\rb\nc.onnx":                     `a\x0db\x0ac.onnx`,
		"\xc2\x9b31m.onnx":                 `\x9b31m.onnx`,
		"bad\xff.onnx":                     `bad\xff.onnx`,
		"evil\u202egnp.onnx":               `evil\u202egnp.onnx`,
		"modèle-日本.onnx":                   "modèle-日本.onnx",
	} {
		if got := Terminal(in); got != want {
			t.Errorf("Terminal(%q) = %q, want %q", in, got, want)
		}
		if strings.ContainsAny(Terminal(in), "\x1b\x07\r\n\x9b") {
			t.Errorf("Terminal(%q) still holds a control character", in)
		}
	}
}

func TestMarkdown(t *testing.T) {
	for in, want := range map[string]string{
		"resnet18.onnx":                     "resnet18.onnx",
		"<img src=x onerror=alert(1)>.onnx": `\<img src=x onerror=alert(1)\>.onnx`,
		"[click](http://evil)":              `\[click\](http://evil)`,
		"a|b":                               `a\|b`,
		"line1\nline2":                      "line1 line2",
		"&lt;":                              `\&lt;`,
		"\x1b[31m":                          `\x1b\[31m`,
	} {
		if got := Markdown(in); got != want {
			t.Errorf("Markdown(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"net.onnx": "`net.onnx`",
		"a`b.onnx": "``a`b.onnx``",
		"`x":       "`` `x ``",
		"a\nb":     "`a b`",
		"<script>": "`<script>`",
	} {
		if got := MarkdownCode(in); got != want {
			t.Errorf("MarkdownCode(%q) = %q, want %q", in, got, want)
		}
	}
	if f := MarkdownFence([]string{"ok", "x ````` y"}); f != "``````" {
		t.Errorf("fence %q", f)
	}
}

func TestTerminalWriter(t *testing.T) {
	var b strings.Builder
	w := TerminalWriter(&b)
	w.Write([]byte("ops:\n\tConv \x1b]0;x\x07 12\n"))
	if got, want := b.String(), "ops:\n\tConv \\x1b]0;x\\x07 12\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// A clean line passes through as it is, without a copy: `trtd inspect`
// writes one line per op, and a model may hold tens of thousands of them.
func TestTerminalWriterCleanLineCostsNothing(t *testing.T) {
	w := TerminalWriter(io.Discard)
	line := []byte("  40000  Op39999                  not in the operator table\n\tnext\n")
	if n := testing.AllocsPerRun(100, func() { w.Write(line) }); n != 0 {
		t.Errorf("%v allocations per clean line, want 0", n)
	}
	var b strings.Builder
	TerminalWriter(&b).Write([]byte("ok \ufffd\tbad \xff\n"))
	if got, want := b.String(), "ok \ufffd\tbad \\xff\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
