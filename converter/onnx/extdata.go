package onnx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ExternalRefs returns the external-data references of every tensor of the
// model (all graphs, sub-graphs and attribute tensors), in file order.
func (m *Model) ExternalRefs() []ExternalRef {
	var refs []ExternalRef
	for _, t := range m.tensors {
		if t.External != nil {
			refs = append(refs, *t.External)
		}
	}
	return refs
}

// checkExternal refuses external-data locations that are absolute, contain
// "..", or (with dir set) name a file that is missing, not regular, outside
// dir once symlinks are resolved, or too short for the tensor.
func (m *Model) checkExternal(dir string) error {
	m.Dir = dir
	var refs []*ExternalRef
	for _, t := range m.tensors {
		if ref := t.External; ref != nil {
			ref.Need, ref.At = t.Bytes(), t.Span.Off
			refs = append(refs, ref)
		}
	}
	return checkRefs(refs, dir)
}

// CheckExternalData checks the external-data references of a model read
// earlier (Summary.ExternalData) against the files in dir, as reading the
// model with dir would: the files may have changed since, the model has
// not. It sets each reference's Path.
func CheckExternalData(refs []ExternalRef, dir string) error {
	ps := make([]*ExternalRef, len(refs))
	for i := range refs {
		ps[i] = &refs[i]
	}
	return checkRefs(ps, dir)
}

func checkRefs(refs []*ExternalRef, dir string) error {
	var realDir string
	sizes := map[string]int64{}
	for _, ref := range refs {
		bad := func(format string, args ...any) error {
			return &FormatError{Off: ref.At, What: fmt.Sprintf("tensor %q: external data %q: ", ref.Tensor, ref.Location) + fmt.Sprintf(format, args...), Err: ErrExternalData}
		}
		loc := ref.Location
		if strings.ContainsRune(loc, 0) {
			return bad("NUL in location")
		}
		if filepath.IsAbs(loc) || strings.HasPrefix(loc, `\`) || (len(loc) > 1 && loc[1] == ':') {
			return bad("absolute path")
		}
		for _, part := range strings.FieldsFunc(loc, func(r rune) bool { return r == '/' || r == '\\' }) {
			if part == ".." {
				return bad("path leaves the model's directory")
			}
		}
		if dir == "" {
			continue
		}
		if realDir == "" {
			var err error
			if realDir, err = filepath.EvalSymlinks(dir); err != nil {
				return bad("%v", err)
			}
		}
		path := filepath.Join(dir, filepath.Clean(loc))
		size, seen := sizes[path]
		if !seen {
			real, err := filepath.EvalSymlinks(path)
			if errors.Is(err, os.ErrNotExist) {
				return bad("file is missing")
			}
			if err != nil {
				return bad("%v", err)
			}
			rel, err := filepath.Rel(realDir, real)
			if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				return bad("symlink leads out of the model's directory")
			}
			st, err := os.Stat(real)
			if err != nil {
				return bad("%v", err)
			}
			if !st.Mode().IsRegular() {
				return bad("not a regular file")
			}
			size = st.Size()
			sizes[path] = size
		}
		ref.Path = path
		avail := size - ref.Offset
		if ref.Length >= 0 {
			if ref.Length > avail {
				return bad("offset %d + length %d runs past the end of the file (%d bytes)", ref.Offset, ref.Length, size)
			}
			avail = ref.Length
		}
		if avail < 0 {
			return bad("offset %d is past the end of the file (%d bytes)", ref.Offset, size)
		}
		if avail < ref.Need {
			return bad("holds %d bytes, tensor needs %d", avail, ref.Need)
		}
	}
	return nil
}
