package outbox

import (
	"fmt"
	"reflect"
	"sort"
	"testing"
)

// Reusing a segmented build of 12 parts: cache.json lists the files in
// text order, and the parts must come back as part1..part12, not part1,
// part10, part11, part12, part2...
func TestSortByPartTwelveParts(t *testing.T) {
	var want, names []string
	for i := 1; i <= 12; i++ {
		want = append(want, fmt.Sprintf("/cache/k/part%d.engine", i))
	}
	names = append(names, want...)
	sort.Strings(names) // what cache.json holds
	if reflect.DeepEqual(names, want) {
		t.Fatal("test needs a text order that differs from the part order")
	}
	if got := sortByPart(names); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v", got)
	}
	outbox := []string{"m.manifest.json", "m.part10.engine", "m.part1.engine", "m.part2.engine"}
	if got := sortByPart(outbox); !reflect.DeepEqual(got, []string{"m.manifest.json", "m.part1.engine", "m.part2.engine", "m.part10.engine"}) {
		t.Fatalf("got %v", got)
	}
}
