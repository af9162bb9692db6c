package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/trtd/trtd/daemon/config"
)

// Counters is what the service reports to (daemon/metrics.Counters).
type Counters interface {
	Pulled()
	Pushed()
	RegistryError(op string)
	Fleet(registry string, queued int)
}

// Service is what the daemon's pipeline calls: Obtain before building,
// Share after publishing, FirstStage for the ladder, Status for `trtd
// status`. None of its calls fails a build: each returns what happened in
// words for the report, and logs the full chain.
type Service struct {
	Client *Client
	Queue  *Queue
	Pull   bool
	Push   bool
	Log    *slog.Logger
	Count  Counters
	// OnChange, if set, is called after the queue or the last error
	// changed (the daemon refreshes its status file).
	OnChange func()

	kick    chan struct{}
	mu      sync.Mutex
	lastErr string
	queued  int
}

// OptionsFrom turns the [fleet] section into client options.
func OptionsFrom(cfg *config.Config, tool string) Options {
	f := cfg.Fleet
	return Options{Registry: f.Registry, Credentials: f.Credentials, CA: f.CA, PlainHTTP: f.PlainHTTP,
		Timeout: f.Timeout.D(), MaxEngine: int64(cfg.Inbox.MaxBytes), Tool: tool}
}

// NewService builds the service over a client and a queue in
// stateDir/fleet/queue.
func NewService(o Options, pull, push bool, stateDir string, log *slog.Logger, count Counters) (*Service, error) {
	c, err := New(o)
	if err != nil {
		return nil, err
	}
	q, err := NewQueue(filepath.Join(stateDir, "fleet", "queue"))
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Service{Client: c, Queue: q, Pull: pull, Push: push, Log: log.With("registry", o.Registry), Count: count, kick: make(chan struct{}, 1)}
	s.gauge()
	return s, nil
}

// Origin is what the report says about an engine that came from the
// registry.
type Origin struct {
	Registry string    `json:"registry"`
	Tag      string    `json:"tag"`
	Digest   string    `json:"digest"`
	BuiltBy  string    `json:"built_by,omitempty"`
	Built    time.Time `json:"built"`
	Stage    string    `json:"stage,omitempty"`
}

// Obtain tries to pull the engine for k into dir. It returns the pulled
// files, or nil and a one-line reason when there is nothing usable ("" when
// the registry simply has none, or pulling is off); the build then goes
// on as if there were no registry.
func (s *Service) Obtain(ctx context.Context, k Key, dir string, log *slog.Logger) (*Pulled, string) {
	if s == nil || !s.Pull {
		return nil, ""
	}
	if log == nil {
		log = s.Log
	}
	p, err := s.Client.Pull(ctx, k, dir)
	switch {
	case err == nil:
		s.count(func(c Counters) { c.Pulled() })
		log.Info("engine pulled from the fleet registry", "registry", s.Client.Registry(), "digest", p.Digest, "built_by", p.BuiltBy)
		return p, ""
	case errors.Is(err, ErrNotFound):
		log.Info("no engine in the fleet registry for this device; building", "tag", k.Tag())
		return nil, ""
	case errors.Is(err, ErrMismatch), errors.Is(err, ErrRefused):
		s.count(func(c Counters) { c.RegistryError("pull") })
		log.Warn("the fleet registry's engine was refused; building", "err", err)
		return nil, "the registry's engine was refused: " + firstLine(err.Error())
	default:
		s.count(func(c Counters) { c.RegistryError("pull") })
		s.setErr(err)
		log.Warn("fleet registry unavailable; building", "err", err)
		return nil, "registry not used: " + firstLine(err.Error())
	}
}

// Share queues a for a push and wakes the pusher: it never waits for the
// registry. The returned line is for the report.
func (s *Service) Share(a Artifact) string {
	if s == nil || !s.Push {
		return ""
	}
	if len(a.Key.CacheKey) == 0 {
		return "not shared: no cache key"
	}
	if err := s.Queue.Add(a); err != nil {
		s.Log.Warn("cannot queue the engine for the fleet registry", "err", err)
		return "not shared: " + firstLine(err.Error())
	}
	s.gauge()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return fmt.Sprintf("queued for %s as %s", s.Client.Registry(), a.Key.Tag())
}

// FirstStage is the stage peers of kind found first for modelSHA, ""
// when unknown or the registry is unavailable.
func (s *Service) FirstStage(ctx context.Context, modelSHA, kind string) string {
	if s == nil || !s.Pull {
		return ""
	}
	st, err := s.Client.FirstStage(ctx, modelSHA, kind)
	if err != nil {
		s.Log.Debug("no shared ladder history", "err", err)
	}
	return st
}

// Run pushes queued engines until ctx ends: at once when Share kicks it,
// and every retry interval for those the registry refused to take yet.
func (s *Service) Run(ctx context.Context, every time.Duration) {
	if s == nil {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.Drain(ctx)
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-t.C:
		}
	}
}

// Drain pushes what is due now and logs each outcome.
func (s *Service) Drain(ctx context.Context) []Outcome {
	out := s.Queue.Drain(ctx, s.Client.Push)
	for _, o := range out {
		log := s.Log.With("tag", o.Tag)
		switch {
		case o.Err == nil && o.Result.Kept != "":
			log.Info("engine not pushed: "+o.Result.Kept, "digest", o.Result.Digest)
		case o.Err == nil:
			s.count(func(c Counters) { c.Pushed() })
			if o.Result.Replaced != "" {
				log.Warn("replaced an unreadable artifact under the tag", "was", o.Result.Replaced)
			}
			log.Info("engine pushed to the fleet registry", "digest", o.Result.Digest, "new", o.Result.Pushed)
		case o.Dropped:
			s.count(func(c Counters) { c.RegistryError("push") })
			log.Warn("engine dropped from the push queue", "err", o.Err)
		default:
			s.count(func(c Counters) { c.RegistryError("push") })
			s.setErr(o.Err)
			log.Warn("push failed; will retry", "err", o.Err)
		}
		if o.Err == nil {
			s.setErr(nil)
		}
		if o.Queue != nil {
			log.Warn("push queue item not updated; it is tried again", "err", o.Queue)
		}
	}
	s.gauge()
	if s.OnChange != nil && len(out) > 0 {
		s.OnChange()
	}
	return out
}

// Status is the fleet part of `trtd status`.
type Status struct {
	Registry  string `json:"registry"`
	Pull      bool   `json:"pull"`
	Push      bool   `json:"push"`
	Queued    int    `json:"queued"`
	LastError string `json:"last_error,omitempty"`
}

// Status says where the service stands.
func (s *Service) Status() *Status {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return &Status{Registry: s.Client.Registry(), Pull: s.Pull, Push: s.Push, Queued: s.queued, LastError: s.lastErr}
}

func (s *Service) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.lastErr = ""
		return
	}
	s.lastErr = firstLine(err.Error())
}

func (s *Service) gauge() {
	n := s.Queue.Len()
	s.mu.Lock()
	s.queued = n
	s.mu.Unlock()
	s.count(func(c Counters) { c.Fleet(s.Client.Registry(), n) })
}

func (s *Service) count(f func(Counters)) {
	if s.Count != nil {
		f(s.Count)
	}
}
