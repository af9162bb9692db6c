package main

import (
	"bufio"
	"encoding/json"
	"io"
	"reflect"
	"strings"
)

// writeJSONIndented writes v (a struct) as json.Encoder with
// SetIndent("", "  ") does, byte for byte, without holding the whole
// encoding twice: each top-level field is marshalled on its own and
// indented while it is written. A model of tens of thousands of op types
// makes an encoding of megabytes, which the encoder keeps once compact and
// once indented.
func writeJSONIndented(w io.Writer, v any) error {
	iw := &indentWriter{w: bufio.NewWriter(w)}
	iw.str("{")
	first := true
	var err error
	eachField(reflect.ValueOf(v), func(name string, fv reflect.Value) {
		if err != nil {
			return
		}
		var b []byte
		if b, err = json.Marshal(fv.Interface()); err != nil {
			return
		}
		if !first {
			iw.str(",")
		}
		first = false
		iw.str("\n  ")
		iw.depth = 0
		iw.write(jsonString(name))
		iw.str(": ")
		iw.depth = 1
		iw.write(b)
	})
	if err != nil {
		return err
	}
	if !first {
		iw.str("\n")
	}
	iw.str("}\n")
	return iw.w.Flush()
}

// eachField calls fn for the JSON fields of struct v in encoding/json's
// order, embedded structs flattened. It knows what inspectJSON uses: json
// tags with a name, "-", and no options.
func eachField(v reflect.Value, fn func(name string, fv reflect.Value)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct {
			eachField(v.Field(i), fn)
			continue
		}
		if !f.IsExported() || tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		fn(name, v.Field(i))
	}
}

// indentWriter writes compact JSON with two-space indentation, as
// json.Indent does with prefix "" and indent "  ", starting at depth.
type indentWriter struct {
	w          *bufio.Writer
	depth      int
	needIndent bool // after '{' or '[': a newline comes unless it closes at once
	inString   bool
	escaped    bool
}

// str and putc write to the buffer; its errors are sticky and the final
// Flush returns them.
func (iw *indentWriter) str(s string) { _, _ = iw.w.WriteString(s) }
func (iw *indentWriter) putc(c byte)  { _ = iw.w.WriteByte(c) }

func (iw *indentWriter) newline() {
	iw.putc('\n')
	for i := 0; i < iw.depth; i++ {
		iw.str("  ")
	}
}

// jsonString is s as a JSON string (names of Go fields: never fails).
func jsonString(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

func (iw *indentWriter) write(src []byte) {
	for _, c := range src {
		if iw.inString {
			iw.putc(c)
			switch {
			case iw.escaped:
				iw.escaped = false
			case c == '\\':
				iw.escaped = true
			case c == '"':
				iw.inString = false
			}
			continue
		}
		if iw.needIndent && c != '}' && c != ']' {
			iw.needIndent = false
			iw.depth++
			iw.newline()
		}
		switch c {
		case '"':
			iw.inString = true
			iw.putc(c)
		case '{', '[':
			iw.needIndent = true
			iw.putc(c)
		case ',':
			iw.putc(c)
			iw.newline()
		case ':':
			iw.str(": ")
		case '}', ']':
			if iw.needIndent {
				iw.needIndent = false // empty: "{}", "[]"
			} else {
				iw.depth--
				iw.newline()
			}
			iw.putc(c)
		default:
			iw.putc(c)
		}
	}
}
