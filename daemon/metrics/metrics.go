// Package metrics keeps trtd's counters and writes them in node_exporter's
// textfile-collector format (a <name>.prom file node_exporter reads from
// its --collector.textfile.directory), the monitoring convention on
// devices that already run node_exporter: no new socket, no new daemon.
// The file is replaced atomically, so node_exporter never reads half.
package metrics

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/trtd/trtd/internal/atomicfile"
)

// Counters are trtd's counters since the daemon started (Prometheus
// handles the reset at a restart).
type Counters struct {
	// Path is the .prom file rewritten after every change ("" = none).
	Path         string
	mu           sync.Mutex
	jobs         map[string]float64 // by outcome
	stages       map[string]float64 // by the stage that produced the engine
	oomKills     float64
	buildSeconds float64
	builds       float64
	pulled       float64
	pushed       float64
	regErrors    map[string]float64 // by operation: pull, push
	queue        float64
	registry     string
	err          error
}

// New returns zeroed counters written to path ("" = kept in memory).
func New(path string) *Counters {
	return &Counters{Path: path, jobs: map[string]float64{}, stages: map[string]float64{}, regErrors: map[string]float64{}}
}

// changed rewrites the textfile; a failure is kept for Err.
func (c *Counters) changed() {
	if c.Path == "" {
		return
	}
	err := c.Write(c.Path)
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
}

// Err is the last textfile write's error.
func (c *Counters) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Job counts a terminal job: its outcome, the stage that produced the
// engine ("" when none), the worker's OOM kills and the build's seconds.
func (c *Counters) Job(outcome, stage string, oomKills int, seconds float64) {
	defer c.changed()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.jobs[outcome]++
	if stage != "" {
		c.stages[stage]++
	}
	c.oomKills += float64(oomKills)
	if seconds > 0 {
		c.buildSeconds += seconds
		c.builds++
	}
}

// Pulled counts an engine obtained from the registry.
func (c *Counters) Pulled() { c.add(&c.pulled) }

// Pushed counts an engine shared with the registry.
func (c *Counters) Pushed() { c.add(&c.pushed) }

// RegistryError counts a failed registry operation (op: pull, push).
func (c *Counters) RegistryError(op string) {
	defer c.changed()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.regErrors[op]++
}

// Fleet records the registry in use and the pushes waiting.
func (c *Counters) Fleet(registry string, queued int) {
	defer c.changed()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.registry, c.queue = registry, float64(queued)
}

func (c *Counters) add(p *float64) {
	defer c.changed()
	c.mu.Lock()
	defer c.mu.Unlock()
	*p++
}

// WriteTo writes the counters in the Prometheus text exposition format.
func (c *Counters) WriteTo(w io.Writer) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	family := func(name, typ, help string) { fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ) }
	labelled := func(name, label string, m map[string]float64) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s{%s=\"%s\"} %g\n", name, label, escape(k), m[k])
		}
	}
	family("trtd_jobs_total", "counter", "Terminal jobs by outcome.")
	labelled("trtd_jobs_total", "outcome", c.jobs)
	family("trtd_stage_reached_total", "counter", "Engines by the ladder stage that produced them.")
	labelled("trtd_stage_reached_total", "stage", c.stages)
	family("trtd_oom_kills_total", "counter", "Build workers killed for running out of memory.")
	fmt.Fprintf(&b, "trtd_oom_kills_total %g\n", c.oomKills)
	family("trtd_build_seconds", "summary", "Time spent building engines.")
	fmt.Fprintf(&b, "trtd_build_seconds_sum %g\ntrtd_build_seconds_count %g\n", c.buildSeconds, c.builds)
	family("trtd_fleet_engines_pulled_total", "counter", "Engines obtained from the fleet registry instead of built.")
	fmt.Fprintf(&b, "trtd_fleet_engines_pulled_total %g\n", c.pulled)
	family("trtd_fleet_engines_pushed_total", "counter", "Engines shared with the fleet registry.")
	fmt.Fprintf(&b, "trtd_fleet_engines_pushed_total %g\n", c.pushed)
	family("trtd_fleet_registry_errors_total", "counter", "Registry operations that failed, by operation.")
	labelled("trtd_fleet_registry_errors_total", "op", c.regErrors)
	family("trtd_fleet_push_queue", "gauge", "Pushes waiting for the registry.")
	fmt.Fprintf(&b, "trtd_fleet_push_queue %g\n", c.queue)
	if c.registry != "" {
		family("trtd_fleet_registry_info", "gauge", "The fleet registry in use.")
		fmt.Fprintf(&b, "trtd_fleet_registry_info{registry=\"%s\"} 1\n", escape(c.registry))
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// Write replaces path (a .prom file in node_exporter's textfile
// directory) atomically; "" writes nothing.
func (c *Counters) Write(path string) error {
	if path == "" {
		return nil
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		_, err := c.WriteTo(w)
		return err
	})
}

// escape quotes a label value as the exposition format wants.
func escape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(s)
}
