package outbox

import (
	"regexp"
	"sort"
	"strconv"
)

var partNumber = regexp.MustCompile(`part(\d+)\.engine$`)

// sortByPart orders names by the N of their "partN.engine" suffix (names
// without one keep their relative order, before the parts): part2 comes
// before part10, which a text sort gets wrong.
func sortByPart(names []string) []string {
	n := func(s string) int {
		m := partNumber.FindStringSubmatch(s)
		if m == nil {
			return 0
		}
		v, _ := strconv.Atoi(m[1])
		return v
	}
	out := append([]string(nil), names...)
	sort.SliceStable(out, func(i, j int) bool { return n(out[i]) < n(out[j]) })
	return out
}
