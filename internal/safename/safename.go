// Package safename is the one place names from outside (uploads, GPU and
// TensorRT version strings) become file names: File for the names users
// see in the outbox, Portable for names trtd makes for itself.
package safename

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
	"unicode/utf8"
)

// hashedSuffix matches the suffix File gives a name it changed (and the
// shorter one older versions gave): an upload whose own name ends so is
// hashed too, so it can never take the outbox files of a name that was
// changed into it ("_a-c2748917" is what "-a" once became).
var hashedSuffix = regexp.MustCompile(`-[0-9a-f]{8}([0-9a-f]{8})?$`)

// File makes an uploaded model's base name (without .onnx) safe as the
// stem of its outbox files: no path separators, control characters or
// invalid UTF-8, no leading '-' or '.', at most 200 bytes. A name that had
// to change, or that looks like one that did, gets "-" and 16 hex digits of
// the sha256 of the original, so two uploads never share outbox files.
func File(base string) string {
	s := userName(base)
	if s != base || hashedSuffix.MatchString(s) {
		h := sha256.Sum256([]byte(base))
		s += "-" + hex.EncodeToString(h[:8])
	}
	return s
}

func userName(base string) string {
	var b strings.Builder
	for i, r := range base {
		switch {
		case r == utf8.RuneError || r < 0x20 || r == 0x7f || r == '/' || r == '\\':
			b.WriteByte('_')
		case i == 0 && (r == '-' || r == '.'):
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	s := b.String()
	if len(s) > 200 {
		s = s[:200]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	if s == "" {
		s = "_"
	}
	return s
}

// Portable keeps [A-Za-z0-9._-] and turns every other character into '_':
// a name that survives any shell and file system.
func Portable(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}
