package status

import (
	"testing"
	"time"
)

// The STATUS= line of a build names the stage, phase, elapsed time and
// memory; systemd shows it in `systemctl status`.
func TestOneLine(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	cur := &Current{Job: "j", Model: "m.onnx", Stage: "lean", StageIndex: 2, Stages: 3, Started: t0}
	for _, tc := range []struct {
		name string
		s    Status
		now  time.Time
		want string
	}{
		{"building with memory", Status{Current: cur, Memory: &MemoryNow{MemAvailable: 410 << 20, SwapUsed: 1288490188, WorkerRSS: 1932735283}},
			t0.Add(12*time.Minute + 4*time.Second), "building m.onnx: stage lean (2/3), 12m4s; RAM available 410.0 MiB, swap used 1.2 GiB, worker 1.8 GiB"},
		{"worker not read", Status{Current: cur, Memory: &MemoryNow{MemAvailable: 3 << 30}},
			t0.Add(5 * time.Second), "building m.onnx: stage lean (2/3), 5s; RAM available 3.0 GiB, swap used 0 B"},
		{"no memory", Status{Current: cur}, t0.Add(time.Hour), "building m.onnx: stage lean (2/3), 1h0m0s"},
		{"phase", Status{Current: &Current{Model: "m.onnx", Stage: "fast", StageIndex: 1, Stages: 3, Phase: "Building engine", Step: 3, Steps: 7, Started: t0}},
			t0.Add(90 * time.Second), "building m.onnx: stage fast (1/3), Building engine 3/7, 1m30s"},
		{"idle", Status{Inbox: "/var/lib/trtd/inbox"}, t0, "idle, watching /var/lib/trtd/inbox"},
	} {
		if got := tc.s.OneLine(tc.now); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}
