// Package archtest holds the test that enforces trtd's layering (see
// docs/ARCHITECTURE.md): cmd → daemon → converter → internal.
package archtest
