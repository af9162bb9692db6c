// Package safetext makes strings that come from uploads (file names, node
// and input names, producer strings, error text quoting them) safe to show
// to a person: on a terminal no escape sequence reaches it, and in Markdown
// no raw HTML, link or table break does.
package safetext

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// control reports whether r must never reach a terminal: C0 controls
// (ESC among them), DEL and the C1 controls (CSI, OSC, DCS as single code
// points), and the bidirectional overrides that reorder what is shown.
func control(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// escapeControls writes s with every control character and invalid byte
// shown as a Go escape (\x1b, \u202e); tab and newline as given by keep.
func escapeControls(b *strings.Builder, s string, keep func(rune) bool, other func(*strings.Builder, rune)) {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(b, `\x%02x`, s[i])
		case control(r) && (keep == nil || !keep(r)):
			if r < 0x100 {
				fmt.Fprintf(b, `\x%02x`, r)
			} else {
				fmt.Fprintf(b, `\u%04x`, r)
			}
		case other != nil:
			other(b, r)
		default:
			b.WriteRune(r)
		}
		i += n
	}
}

// Terminal returns s for a terminal line: every control character (ESC,
// CSI, OSC, BEL, carriage return, newline...) and every invalid UTF-8 byte
// is shown as an escape instead of being sent.
func Terminal(s string) string {
	if clean(s) {
		return s
	}
	var b strings.Builder
	escapeControls(&b, s, nil, nil)
	return b.String()
}

func clean(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || control(r) {
			return false
		}
	}
	return true
}

// Markdown returns s as Markdown text that renders as the characters of s:
// HTML, links, images, code and table cells cannot be opened by it, and
// control characters are shown as escapes. Newlines become spaces.
func Markdown(s string) string {
	var b strings.Builder
	escapeControls(&b, s, func(r rune) bool { return r == '\n' || r == '\t' }, func(b *strings.Builder, r rune) {
		switch r {
		case '\n', '\t':
			b.WriteByte(' ')
		case '\\', '`', '*', '[', ']', '<', '>', '&', '|':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	})
	return b.String()
}

// MarkdownCode returns s as an inline code span: fenced by more backticks
// than s holds in a row, so s cannot close it; newlines become spaces and
// control characters escapes. (Inside a code span Markdown renders no HTML.)
func MarkdownCode(s string) string {
	var b strings.Builder
	escapeControls(&b, s, func(r rune) bool { return r == '\n' || r == '\t' }, func(b *strings.Builder, r rune) {
		if r == '\n' || r == '\t' {
			b.WriteByte(' ')
			return
		}
		b.WriteRune(r)
	})
	body := b.String()
	fence := strings.Repeat("`", longestRun(body, '`')+1)
	if strings.HasPrefix(body, "`") || strings.HasSuffix(body, "`") || body == "" {
		body = " " + body + " "
	}
	return fence + body + fence
}

// MarkdownFence returns the fence for a code block holding lines: one
// backtick more than the longest run in them (at least three).
func MarkdownFence(lines []string) string {
	n := 2
	for _, l := range lines {
		if r := longestRun(l, '`'); r > n {
			n = r
		}
	}
	return strings.Repeat("`", n+1)
}

// CodeBlockLine returns one line for a fenced code block: control
// characters shown as escapes (a carriage return cannot hide the line).
func CodeBlockLine(s string) string {
	var b strings.Builder
	escapeControls(&b, s, func(r rune) bool { return r == '\t' }, nil)
	return b.String()
}

func longestRun(s string, c byte) int {
	best, cur := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			cur++
			if cur > best {
				best = cur
			}
		} else {
			cur = 0
		}
	}
	return best
}

// TerminalWriter returns a writer for terminal text views that shows every
// control character except newline and tab as an escape (see Terminal).
// Each Write must hold whole UTF-8 sequences (fmt.Fprintf writes do).
func TerminalWriter(w io.Writer) io.Writer { return termWriter{w} }

type termWriter struct{ w io.Writer }

func (t termWriter) Write(p []byte) (int, error) {
	// The common case, a clean line, is passed on as it is: no copy.
	if cleanLines(p) {
		if _, err := t.w.Write(p); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	var b strings.Builder
	escapeControls(&b, string(p), func(r rune) bool { return r == '\n' || r == '\t' }, nil)
	if _, err := io.WriteString(t.w, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// cleanLines is clean for text whose newlines and tabs are kept.
func cleanLines(p []byte) bool {
	for i := 0; i < len(p); {
		r, n := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError && n == 1 || control(r) && r != '\n' && r != '\t' {
			return false
		}
		i += n
	}
	return true
}
