// Package filehash names content by its sha256, in hex: the one way trtd
// hashes a model, an engine or any file it compares (the worker's
// EngineSHA256 and the daemon's check of the placed engine must agree).
package filehash

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"os"
)

// SHA256 returns the hex sha256 of a file's content.
func SHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }() // read-only; a read error comes from io.Copy
	h := New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return h.Sum(), nil
}

// Bytes returns the hex sha256 of data.
func Bytes(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Hash is a sha256 being written, for content hashed while it streams
// elsewhere (io.MultiWriter).
type Hash struct{ h hash.Hash }

// New starts a Hash.
func New() *Hash { return &Hash{sha256.New()} }

func (h *Hash) Write(p []byte) (int, error) { return h.h.Write(p) }

// Sum is the hex sha256 of what was written.
func (h *Hash) Sum() string { return hex.EncodeToString(h.h.Sum(nil)) }
