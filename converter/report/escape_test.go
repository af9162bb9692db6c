package report

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/trtd/trtd/converter/onnx"
)

// F-20: model-controlled strings (file name, reason, producer, input names,
// log lines) reach the Markdown report as text: no raw HTML, no link, no
// escape sequence, and a log line cannot close its code block.
func TestMarkdownEscapesModelStrings(t *testing.T) {
	evil := "<img src=x onerror=alert(1)>"
	r := &Report{
		Outcome: OutcomeFailed,
		Reason:  "model " + evil + ".onnx: [click](http://evil.example) \x1b]8;;http://evil\x07",
		Model: Model{Name: evil + "`.onnx", Sidecar: "a`b.toml",
			Summary: &onnx.Summary{Producer: onnx.Producer{Name: "<script>alert(1)</script>", Version: "1"},
				Inputs: []onnx.ValueInfo{{Name: "in`<b>", Type: &onnx.Type{Kind: onnx.TypeTensor, Elem: onnx.Float, HasShape: true,
					Shape: []onnx.Dim{{Kind: onnx.DimParam, Param: "<i>N</i>"}, {Kind: onnx.DimValue, Value: 3}}}}}},
			Warnings: []string{"input <b>x</b> | broken table"}},
		Attempts: []Attempt{{Stage: "fast", Reason: "node <svg onload=alert(1)> failed\n| x |",
			LogTail: []string{"```", "</code><script>alert(1)</script>", "\x1b[2J\rhidden"}}},
		KeptModel: "/var/lib/trtd/failed/x/" + evil + ".onnx",
	}
	var b bytes.Buffer
	if err := Markdown(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, bad := range []string{"<img", "<script", "<svg", "<b>", "<i>", "](http", "\x1b", "\x07", "\r"} {
		for _, line := range strings.Split(out, "\n") {
			// Inside a code span or block, HTML is shown, not rendered.
			if strings.Contains(line, bad) && !inCode(out, line) {
				t.Errorf("raw %q in line %q", bad, line)
			}
		}
	}
	if !strings.Contains(out, "````\n```\n") {
		t.Errorf("log block fence not longer than the ``` inside it:\n%s", out)
	}
	if !strings.Contains(out, "| file | ``"+evil+"`.onnx`` |") {
		t.Errorf("file name not in a code span that it cannot close:\n%s", out)
	}
}

// inCode reports whether line is inside a fenced code block of doc or is
// a line whose only markup characters are escaped or inside code spans.
func inCode(doc, line string) bool {
	fence := ""
	for _, l := range strings.Split(doc, "\n") {
		if strings.HasPrefix(l, "```") {
			if fence == "" {
				fence = strings.TrimRight(l, " ")
			} else if l == fence {
				fence = ""
			}
			continue
		}
		if l == line && fence != "" {
			return true
		}
	}
	// Strip backslash escapes and code spans and look again.
	rest := regexp.MustCompile(`\\[\\<>\[\]|&*]`).ReplaceAllString(line, "")
	for {
		i := strings.Index(rest, "`")
		if i < 0 {
			break
		}
		n := len(rest[i:]) - len(strings.TrimLeft(rest[i:], "`"))
		f := rest[i : i+n]
		j := strings.Index(rest[i+n:], f)
		if j < 0 {
			break
		}
		rest = rest[:i] + rest[i+n+j+n:]
	}
	return !strings.ContainsAny(rest, "<\x1b\x07\r") && !strings.Contains(rest, "](http")
}
