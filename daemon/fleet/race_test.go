package fleet

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/trtd/trtd/daemon/fleet/registrytest"
)

// hookPut calls before ahead of each manifest PUT the client sends, and
// after once the registry answered it, until one answer is not a 401
// (the auth challenge); that answer's status and body are kept.
type hookPut struct {
	next          http.RoundTripper
	before, after func()
	mu            sync.Mutex
	done          bool
	status        int
	body          string
}

func (h *hookPut) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	hook := !h.done && r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/")
	if !hook {
		h.mu.Unlock()
		return h.next.RoundTrip(r)
	}
	defer h.mu.Unlock()
	h.before()
	resp, err := h.next.RoundTrip(r)
	h.after()
	if err == nil && resp.StatusCode != http.StatusUnauthorized {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(strings.NewReader(string(b)))
		h.done, h.status, h.body = true, resp.StatusCode, string(b)
	}
	return resp, err
}

// A manifest PUT that meets another device's write of a blob it
// references is refused by the registry; the push looks at its blobs
// again, uploads what is gone and repeats the PUT. Both states are made
// deterministically around the first manifest PUT of device B, after
// device A pushed an artifact that shares B's empty config and report:
//   - "link mid-rewrite": the repository's link file of the shared config
//     blob is empty while the registry answers B's PUT and holds the
//     digest again before B sees the answer: exactly what distribution's
//     in-place link rewrite (truncate, then write; v2.8.3
//     registry/storage/driver/filesystem/driver.go:135-147, :180-188)
//     shows a reader while device A commits the same blob. The registry's
//     answer is the one seen in the wild: 400 DIGEST_INVALID +
//     MANIFEST_BLOB_UNKNOWN.
//   - "blob deleted": the shared blob is deleted through the registry's
//     API right before B's PUT (as a registry clean-up between B's check
//     and its PUT would): 400 MANIFEST_BLOB_UNKNOWN, and the blob must be
//     uploaded again.
func TestManifestPutRacingABlobWrite(t *testing.T) {
	s := registrytest.T(t)
	ctx := context.Background()
	empty := ocispec.DescriptorEmptyJSON
	link := s.LayerLink("trtd/engines", empty.Digest.Encoded())
	cases := map[string]func(t *testing.T) (before, after func()){
		"link mid-rewrite": func(t *testing.T) (func(), func()) {
			held, err := os.ReadFile(link)
			if err != nil || len(held) == 0 {
				t.Fatalf("the shared config's link: %q, %v", held, err)
			}
			return func() {
					if err := os.Truncate(link, 0); err != nil {
						t.Error(err)
					}
				}, func() {
					if err := os.WriteFile(link, held, 0o644); err != nil {
						t.Error(err)
					}
				}
		},
		"blob deleted": func(t *testing.T) (func(), func()) {
			other := client(t, s, nil)
			return func() {
				if err := other.repo.Blobs().Delete(ctx, empty); err != nil {
					t.Error(err)
				}
			}, func() {}
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			ck := "ck-put-" + strings.ReplaceAll(name, " ", "-")
			if _, err := client(t, s, nil).Push(ctx, built(t, t.TempDir(), devA, keyFor(devA, ck+"-a"), 4096)); err != nil {
				t.Fatal(err)
			}
			before, after := mk(t)
			c := client(t, s, nil)
			hc := c.repo.Client.(*auth.Client).Client
			h := &hookPut{next: hc.Transport, before: before, after: after}
			hc.Transport = h
			b := built(t, t.TempDir(), devB, keyFor(devB, ck), 4096)
			res, err := c.Push(ctx, b)
			if !h.done || h.status != http.StatusBadRequest || !strings.Contains(h.body, "MANIFEST_BLOB_UNKNOWN") {
				t.Fatalf("the registry did not refuse the racing PUT as expected: %d %s", h.status, h.body)
			}
			if err != nil {
				t.Fatalf("push: %v", err)
			}
			if !res.Pushed || res.Kept != "" {
				t.Fatalf("push did not create its tag: %+v", res)
			}
			p, err := client(t, s, nil).Pull(ctx, keyFor(devB, ck), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(p.Engine)
			want, _ := os.ReadFile(b.Engine)
			if string(got) != string(want) {
				t.Fatal("the tag does not name device B's engine")
			}
		})
	}
}
