// Package bytesize formats byte counts for people: the one formatter of
// every log line, report and command output of trtd.
package bytesize

import "strconv"

// Format renders n in the largest binary unit it reaches, with one
// decimal ("1.5 GiB", "44.6 MiB"); bytes as a whole number. Negative
// counts (deltas) keep their sign.
func Format(n int64) string {
	switch {
	case n < 0:
		return "-" + Format(-n)
	case n >= 1<<40:
		return one(n, 1<<40) + " TiB"
	case n >= 1<<30:
		return one(n, 1<<30) + " GiB"
	case n >= 1<<20:
		return one(n, 1<<20) + " MiB"
	case n >= 1<<10:
		return one(n, 1<<10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " B"
}

func one(n, unit int64) string { return strconv.FormatFloat(float64(n)/float64(unit), 'f', 1, 64) }

// Limit renders a limit where a negative value means none ("unlimited").
func Limit(n int64) string {
	if n < 0 {
		return "unlimited"
	}
	return Format(n)
}

// MiB renders n rounded to the nearest MiB, for figures that read better
// in one unit (plans, budgets, recommendations).
func MiB(n int64) string { return strconv.FormatInt((n+(1<<19))>>20, 10) + " MiB" }
