//go:build !trtdfault

package faultpoint

import "log/slog"

// Enabled reports whether the hook is compiled in.
const Enabled = false

// Hit does nothing: this build has no fault injection.
func Hit(*slog.Logger, string) {}

// Delay does nothing: this build has no fault injection.
func Delay(string) {}
