package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// problems collects every problem of one file with the key it concerns, so
// they can be reported all at once, each with its line, in a stable order
// (by line, then by text).
type problems struct {
	name  string
	lines map[string]int // canonical key ("stage.1.workspace") -> line
	list  []problem
}

type problem struct {
	line int
	text string
}

func newProblems(name string, data []byte) *problems {
	return &problems{name: name, lines: keyLines(data)}
}

// add records msg about the canonical key path (components joined by ".",
// array-of-table indexes as numbers). The line is the key's own, or its
// closest enclosing table's when the key is not in the file.
func (p *problems) add(path, msg string) {
	p.list = append(p.list, problem{line: p.line(path), text: msg})
}

func (p *problems) line(path string) int {
	for path != "" {
		if l, ok := p.lines[path]; ok {
			return l
		}
		i := strings.LastIndexByte(path, '.')
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// addValidation records a message of validate(), whose text starts with the
// key it concerns ("stage[1] (lean).parts: ...", "paths.inbox and paths.state: ...").
func (p *problems) addValidation(msg string) {
	p.add(canonicalKey(msg), msg)
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	sort.SliceStable(p.list, func(i, j int) bool {
		a, b := p.list[i], p.list[j]
		if (a.line == 0) != (b.line == 0) {
			return b.line == 0 // problems of keys not in the file (defaults) last
		}
		if a.line != b.line {
			return a.line < b.line
		}
		return a.text < b.text
	})
	out := make([]string, len(p.list))
	for i, q := range p.list {
		if q.line > 0 {
			out[i] = fmt.Sprintf("%s:%d: %s", p.name, q.line, q.text)
		} else {
			out[i] = fmt.Sprintf("%s: %s", p.name, q.text)
		}
	}
	return fmt.Errorf("%w:\n  %s", ErrInvalid, strings.Join(out, "\n  "))
}

// canonicalKey turns the key a validation message starts with into the
// canonical path: "stage[1] (lean).parts: x" -> "stage.1.parts".
func canonicalKey(msg string) string {
	k := msg
	if i := strings.Index(k, ": "); i >= 0 {
		k = k[:i]
	}
	if i := strings.Index(k, " and "); i >= 0 {
		k = k[:i]
	}
	if i := strings.IndexByte(k, '/'); i >= 0 {
		k = k[:i]
	}
	// Drop a parenthesised stage name: "stage[1] (lean).parts".
	for {
		i := strings.Index(k, " (")
		if i < 0 {
			break
		}
		j := strings.IndexByte(k[i:], ')')
		if j < 0 {
			k = k[:i]
			break
		}
		k = k[:i] + k[i+j+1:]
	}
	k = strings.ReplaceAll(k, "[", ".")
	k = strings.ReplaceAll(k, "]", "")
	return k
}

// displayKey turns a canonical path into the form messages use: "stage[1].workspace".
func displayKey(path []string) string {
	var b strings.Builder
	for i, c := range path {
		if _, err := strconv.Atoi(c); err == nil && i > 0 {
			b.WriteString("[" + c + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(c)
	}
	return b.String()
}

// keyLines maps each table header and key assignment of a TOML document to
// its line. Arrays of tables are numbered in order ("stage.0", "stage.1").
// It reads the layout only; the document's syntax was already checked by
// the TOML parser, so a line it misreads only loses a line number.
func keyLines(data []byte) map[string]int {
	lines := map[string]int{}
	counts := map[string]int{}
	table := ""
	for n, l := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(l)
		switch {
		case t == "" || t[0] == '#':
			continue
		case strings.HasPrefix(t, "[["):
			end := strings.Index(t, "]]")
			if end < 0 {
				continue
			}
			h := unquoteKey(t[2:end])
			table = h + "." + strconv.Itoa(counts[h])
			counts[h]++
			lines[table] = n + 1
			if _, ok := lines[h]; !ok {
				lines[h] = n + 1
			}
		case t[0] == '[':
			end := strings.IndexByte(t, ']')
			if end < 0 {
				continue
			}
			table = unquoteKey(t[1:end])
			lines[table] = n + 1
		default:
			eq := strings.IndexByte(t, '=')
			if eq <= 0 {
				continue
			}
			k := unquoteKey(t[:eq])
			if table != "" {
				k = table + "." + k
			}
			if _, ok := lines[k]; !ok {
				lines[k] = n + 1
			}
		}
	}
	return lines
}

func unquoteKey(s string) string {
	parts := strings.Split(s, ".")
	for i, p := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(p), `"'`)
	}
	return strings.Join(parts, ".")
}

// decodeStrict decodes data into v (a pointer to a struct with toml tags)
// key by key, so that every unknown key and every bad value is recorded in
// p instead of stopping at the first. A bad value leaves the field as it
// was (its default). It returns the decoder's metadata, or an error for a
// document that is not TOML at all.
func decodeStrict(data []byte, v any, p *problems) (toml.MetaData, error) {
	var top map[string]toml.Primitive
	md, err := toml.Decode(string(data), &top)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return md, fmt.Errorf("%s:%d: %w: %s", p.name, perr.Position.Line, ErrInvalid, perr.Message)
		}
		return md, fmt.Errorf("%s: %w: %v", p.name, ErrInvalid, err)
	}
	unifyStrict(&md, top, reflect.ValueOf(v).Elem(), nil, p)
	return md, nil
}

var (
	unmarshalerType     = reflect.TypeOf((*toml.Unmarshaler)(nil)).Elem()
	textUnmarshalerType = reflect.TypeOf((*interface{ UnmarshalText([]byte) error })(nil)).Elem()
)

func fieldsByTag(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("toml"), ",")[0]
		if tag != "" && tag != "-" {
			m[tag] = i
		}
	}
	return m
}

func unifyStrict(md *toml.MetaData, table map[string]toml.Primitive, rv reflect.Value, path []string, p *problems) {
	fields := fieldsByTag(rv.Type())
	for key, prim := range table {
		kp := append(append([]string(nil), path...), key)
		canon := strings.Join(kp, ".")
		i, ok := fields[key]
		if !ok {
			p.add(canon, fmt.Sprintf("unknown key %q", displayKey(kp)))
			continue
		}
		f := rv.Field(i)
		ft := f.Type()
		custom := reflect.PointerTo(ft).Implements(unmarshalerType) || reflect.PointerTo(ft).Implements(textUnmarshalerType)
		switch {
		case !custom && ft.Kind() == reflect.Struct:
			var sub map[string]toml.Primitive
			if err := md.PrimitiveDecode(prim, &sub); err != nil {
				p.add(canon, fmt.Sprintf("%s: must be a table ([%s])", displayKey(kp), displayKey(kp)))
				continue
			}
			unifyStrict(md, sub, f, kp, p)
		case !custom && ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			var subs []map[string]toml.Primitive
			if err := md.PrimitiveDecode(prim, &subs); err != nil {
				p.add(canon, fmt.Sprintf("%s: must be an array of tables ([[%s]])", displayKey(kp), displayKey(kp)))
				continue
			}
			s := reflect.MakeSlice(ft, len(subs), len(subs))
			for j, sub := range subs {
				unifyStrict(md, sub, s.Index(j), append(kp[:len(kp):len(kp)], strconv.Itoa(j)), p)
			}
			f.Set(s)
		default:
			nv := reflect.New(ft)
			if err := md.PrimitiveDecode(prim, nv.Interface()); err != nil {
				p.add(canon, fmt.Sprintf("%s: %s", displayKey(kp), valueError(err)))
				continue
			}
			f.Set(nv.Elem())
		}
	}
}

// valueError strips the TOML library's position prefix (the line is added
// by problems) from a value error.
func valueError(err error) string {
	var perr toml.ParseError
	if errors.As(err, &perr) {
		return perr.Message
	}
	s := err.Error()
	if strings.HasPrefix(s, "toml: ") {
		if i := strings.Index(s, "): "); i >= 0 {
			return s[i+3:]
		}
		return strings.TrimPrefix(s, "toml: ")
	}
	return s
}
