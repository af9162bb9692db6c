// Package safename is the one place names from outside (uploads, GPU and
// TensorRT version strings) become file names: File for the names users
// see in the outbox, Portable for names trtd makes for itself.
package safename

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf8"
)

// File makes an uploaded name safe for outbox file names: no path
// separators, control characters or invalid UTF-8, no leading '-' or '.'.
// A name that had to change gets a short hash of the original, so two
// uploads never share outbox files.
func File(base string) string {
	s := userName(base)
	if s != base {
		h := sha256.Sum256([]byte(base))
		s += "-" + hex.EncodeToString(h[:4])
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
