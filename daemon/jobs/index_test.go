package jobs

import "testing"

// A claim under way is in the index before its first save (so the sweep
// after READY leaves that save's temporary file alone); listing the
// unfinished jobs meanwhile (the builder probe's requeue) must not drop it.
func TestListUnfinishedKeepsAClaimUnderWay(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reconcile(); err != nil {
		t.Fatal(err)
	}
	const id = "20261201T000000Z-claiming"
	s.note(id, Claiming) // what Claim does before it makes the directory
	if _, err := s.ListUnfinished(); err != nil {
		t.Fatal(err)
	}
	if !s.IsOpen(id) {
		t.Fatal("a claim under way was dropped from the index: the sweep would take its first save")
	}
}
