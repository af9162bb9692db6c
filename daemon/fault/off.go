//go:build !trtdfault

package fault

import "log/slog"

// Enabled reports whether the hook is compiled in.
const Enabled = false

// At does nothing: this build has no fault injection.
func At(*slog.Logger, string) {}
