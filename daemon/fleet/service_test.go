package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trtd/trtd/daemon/fleet/registrytest"
)

type countsDouble struct {
	mu                   sync.Mutex
	pulled, pushed, errs int
	registry             string
	queued               int
}

func (c *countsDouble) Pulled()              { c.mu.Lock(); c.pulled++; c.mu.Unlock() }
func (c *countsDouble) Pushed()              { c.mu.Lock(); c.pushed++; c.mu.Unlock() }
func (c *countsDouble) RegistryError(string) { c.mu.Lock(); c.errs++; c.mu.Unlock() }
func (c *countsDouble) Fleet(r string, n int) {
	c.mu.Lock()
	c.registry, c.queued = r, n
	c.mu.Unlock()
}

// A push while the registry is down waits in the queue, survives a
// restart of the daemon (a new queue over the same directory) and goes out
// once the registry is back; the build never waited for it.
func TestQueueRetriesAcrossRestart(t *testing.T) {
	s := registrytest.T(t)
	ctx := context.Background()
	state := t.TempDir()
	creds, _ := s.Creds(t.TempDir(), registrytest.Password)
	o := Options{Registry: s.Repository("trtd/engines"), Credentials: creds, CA: s.CA, Timeout: 2 * time.Second}
	counts := &countsDouble{}
	svc, err := NewService(o, true, true, state, slog.New(slog.DiscardHandler), counts)
	if err != nil {
		t.Fatal(err)
	}
	s.Stop()
	a := built(t, t.TempDir(), devA, keyFor(devA, "ck-queue"), 200<<10)
	line := svc.Share(a)
	if !strings.Contains(line, "queued for") {
		t.Fatalf("share: %q", line)
	}
	out := svc.Drain(ctx)
	if len(out) != 1 || !errors.Is(out[0].Err, ErrUnavailable) || out[0].Dropped {
		t.Fatalf("drain with the registry down: %+v", out)
	}
	if st := svc.Status(); st.Queued != 1 || st.LastError == "" || counts.queued != 1 || counts.errs != 1 {
		t.Fatalf("status %+v counts %+v", st, counts)
	}
	// Not due yet: a second drain does not hammer the registry.
	if out := svc.Drain(ctx); len(out) != 0 {
		t.Fatalf("retried before its time: %+v", out)
	}

	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	svc2, err := NewService(o, true, true, state, slog.New(slog.DiscardHandler), counts)
	if err != nil {
		t.Fatal(err)
	}
	items, _ := svc2.Queue.Items()
	if len(items) != 1 || items[0].Attempts != 1 {
		t.Fatalf("queue after restart: %+v", items)
	}
	svc2.Queue.Now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	out = svc2.Drain(ctx)
	if len(out) != 1 || out[0].Err != nil || !out[0].Result.Pushed {
		t.Fatalf("drain after the registry came back: %+v", out)
	}
	if svc2.Queue.Len() != 0 || counts.pushed != 1 || counts.queued != 0 {
		t.Fatalf("queue %d, counts %+v", svc2.Queue.Len(), counts)
	}
	dir := t.TempDir()
	p, why := svc2.Obtain(ctx, keyFor(devB, "ck-queue"), dir, nil)
	if p == nil || why != "" || counts.pulled != 1 {
		t.Fatalf("obtain: %v %q", p, why)
	}
	sameFile(t, a.Engine, p.Engine)
}

// A queued item whose files were lost is dropped, not retried forever.
func TestQueueDropsUnusableItems(t *testing.T) {
	q, err := NewQueue(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := built(t, t.TempDir(), devA, keyFor(devA, "ck-lost"), 100)
	if err := q.Add(a); err != nil {
		t.Fatal(err)
	}
	out := q.Drain(context.Background(), func(context.Context, Artifact) (PushResult, error) {
		return PushResult{}, errors.New("hash engine: file changed")
	})
	if len(out) != 1 || !out[0].Dropped || q.Len() != 0 {
		t.Fatalf("%+v, %d left", out, q.Len())
	}
}

// A push cut short by the daemon's stop is not a failed attempt: the item
// stays as it was (no back-off, no rewrite racing the exit) and is due at
// the next start.
func TestQueueStopIsNotAnAttempt(t *testing.T) {
	dir := t.TempDir()
	q, err := NewQueue(dir)
	if err != nil {
		t.Fatal(err)
	}
	a := built(t, t.TempDir(), devA, keyFor(devA, "ck-stop"), 100)
	if err := q.Add(a); err != nil {
		t.Fatal(err)
	}
	before, _ := q.Items()
	ctx, cancel := context.WithCancel(context.Background())
	out := q.Drain(ctx, func(ctx context.Context, _ Artifact) (PushResult, error) {
		cancel()
		return PushResult{}, fmt.Errorf("push: %w", ctx.Err())
	})
	after, _ := q.Items()
	if len(out) != 0 || len(after) != 1 || after[0].Attempts != 0 || !after[0].NextTry.Equal(before[0].NextTry) {
		t.Fatalf("outcomes %+v; item before %+v after %+v", out, before, after)
	}
}
