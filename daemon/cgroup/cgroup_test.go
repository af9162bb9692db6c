package cgroup

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

type tree map[string]string

func (tr tree) write(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range tr {
		full := filepath.Join(root, p)
		if strings.HasSuffix(p, "/") {
			os.MkdirAll(full, 0o755)
			continue
		}
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const (
	mountsV1 = "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n" +
		"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
	mountsV2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
	// A container whose cgroup namespace root is /docker/abc.
	mountsV1Container = "35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
)

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tr      tree
		version int
		dir     string
		swap    bool
		reason  string
	}{
		{"v1 hybrid (memory on v1)", tree{
			"proc/self/mountinfo":                      mountsV1,
			"proc/self/cgroup":                         "4:memory:/process_api/x\n0::/\n",
			"sys/fs/cgroup/unified/cgroup.controllers": "hugetlb\n",
			"sys/fs/cgroup/memory/process_api/x/memory.memsw.limit_in_bytes": "9223372036854771712\n",
		}, 1, "sys/fs/cgroup/memory/process_api/x", true, ""},
		{"v1 without swap accounting", tree{
			"proc/self/mountinfo":                      mountsV1,
			"proc/self/cgroup":                         "4:memory:/trtd.service\n",
			"sys/fs/cgroup/memory/trtd.service/":       "",
			"sys/fs/cgroup/unified/cgroup.controllers": "",
		}, 1, "sys/fs/cgroup/memory/trtd.service", false, ""},
		{"v1 in a container", tree{
			"proc/self/mountinfo": mountsV1Container,
			"proc/self/cgroup":    "4:memory:/docker/abc/sub\n",
			"sys/fs/cgroup/memory/sub/memory.memsw.limit_in_bytes": "1",
		}, 1, "sys/fs/cgroup/memory/sub", true, ""},
		{"v2 delegated", tree{
			"proc/self/mountinfo": mountsV2,
			"proc/self/cgroup":    "0::/system.slice/trtd.service\n",
			"sys/fs/cgroup/system.slice/trtd.service/cgroup.controllers": "cpu io memory pids\n",
			"sys/fs/cgroup/system.slice/trtd.service/memory.swap.max":    "max\n",
		}, 2, "sys/fs/cgroup/system.slice/trtd.service", true, ""},
		{"v2 without memory", tree{
			"proc/self/mountinfo":                         mountsV2,
			"proc/self/cgroup":                            "0::/user.slice\n",
			"sys/fs/cgroup/user.slice/cgroup.controllers": "cpu pids\n",
		}, 0, "", false, "no memory controller"},
		{"nothing mounted", tree{
			"proc/self/mountinfo": "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n",
			"proc/self/cgroup":    "",
		}, 0, "", false, "no cgroup memory controller is mounted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := tc.tr.write(t)
			info := Detect(WithRoot(root))
			wantDir := ""
			if tc.dir != "" {
				wantDir = filepath.Join(root, tc.dir)
			}
			if info.Version != tc.version || info.Dir != wantDir || info.SwapAccounting != tc.swap ||
				!strings.Contains(info.Reason, tc.reason) {
				t.Errorf("Detect = %+v; want version %d dir %s swap %v reason ~%q", info, tc.version, wantDir, tc.swap, tc.reason)
			}
		})
	}
}

func TestNewWorkerV2Files(t *testing.T) {
	root := tree{
		"proc/self/mountinfo": mountsV2,
		"proc/self/cgroup":    "0::/system.slice/trtd.service\n",
		"sys/fs/cgroup/system.slice/trtd.service/cgroup.controllers":     "memory\n",
		"sys/fs/cgroup/system.slice/trtd.service/cgroup.subtree_control": "memory\n",
		"sys/fs/cgroup/system.slice/trtd.service/memory.swap.max":        "max\n",
	}.write(t)
	// A plain directory stands in for cgroupfs: it checks which files are
	// written, not what the kernel does with them.
	c, err := NewWorker("", "job-1", 512<<20, 0, slog.New(slog.DiscardHandler), WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Remove()
	if c.Version != 2 || c.fd < 0 {
		t.Fatalf("cgroup %+v", c)
	}
	// memory.swap.max does not exist in the new (fake) child: the cap is
	// reported as not applied.
	got, _ := os.ReadFile(filepath.Join(c.Dir, "memory.max"))
	if string(got) != strconv.Itoa(512<<20) || c.SwapLimit != -1 {
		t.Errorf("memory.max %q, swap limit %d", got, c.SwapLimit)
	}
	cmd := exec.Command("true")
	c.Prepare(cmd)
	if cmd.SysProcAttr == nil || !cmd.SysProcAttr.UseCgroupFD || cmd.SysProcAttr.CgroupFD != c.fd {
		t.Errorf("Prepare did not set CLONE_INTO_CGROUP: %+v", cmd.SysProcAttr)
	}
	if _, err := NewWorker("", "../x", 1, 0, nil, WithRoot(root)); err == nil {
		t.Error("a name with a slash was accepted")
	}
}

func TestUnavailable(t *testing.T) {
	root := tree{"proc/self/mountinfo": "", "proc/self/cgroup": ""}.write(t)
	_, err := NewWorker("", "job", 1<<20, 0, nil, WithRoot(root))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no cgroup memory controller") {
		t.Errorf("got %v", err)
	}
}

func TestEventsV1Fixture(t *testing.T) {
	dir := tree{"memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", "memory.failcnt": "17\n",
		"memory.max_usage_in_bytes": "67108864\n"}.write(t)
	c := &Cgroup{Dir: dir, Version: 1, fd: -1}
	e, err := c.ReadEvents()
	if err != nil || e.OOMKill != 2 || e.Max != 17 || e.Peak != 64<<20 {
		t.Errorf("events %+v, %v", e, err)
	}
	old := tree{"memory.oom_control": "oom_kill_disable 0\nunder_oom 0\n"}.write(t)
	c = &Cgroup{Dir: old, Version: 1, fd: -1}
	if _, err := c.OOMKilled(); err == nil || !strings.Contains(err.Error(), "4.13") {
		t.Errorf("old kernel: %v", err)
	}
	v2 := tree{"memory.events": "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 1\n"}.write(t)
	c = &Cgroup{Dir: v2, Version: 2, fd: -1}
	if k, err := c.OOMKilled(); !k || err != nil {
		t.Errorf("v2 oom: %v %v", k, err)
	}
}

// ---- real cgroup ----

func TestMain(m *testing.M) {
	if n := os.Getenv("TRTD_CG_HOG"); n != "" {
		limit, _ := strconv.ParseInt(n, 10, 64)
		// Like the real worker: nothing is allocated before the request.
		os.Stdin.Read(make([]byte, 1))
		var keep [][]byte
		for total := int64(0); total < limit; total += 8 << 20 {
			b := make([]byte, 8<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			keep = append(keep, b)
		}
		fmt.Println(len(keep))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func realCgroup(t *testing.T, limit int64) *Cgroup {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping real cgroups")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
	info := Detect()
	if info.Version == 0 {
		t.Skipf("no memory cgroup here: %s", info.Reason)
	}
	name := fmt.Sprintf("trtd-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	c, err := NewWorker("", name, limit, 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Skipf("cannot create a worker cgroup here: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Remove(); err != nil {
			t.Error(err)
		}
	})
	return c
}

func runHog(t *testing.T, c *Cgroup, alloc int64) (*os.ProcessState, string) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("TRTD_CG_HOG=%d", alloc))
	var out strings.Builder
	cmd.Stdout = &out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.Prepare(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.Started(cmd.Process.Pid); err != nil {
		cmd.Process.Kill()
		t.Fatal(err)
	}
	// The request goes out only once the worker is in its cgroup.
	stdin.Write([]byte("go"))
	stdin.Close()
	cmd.Wait()
	return cmd.ProcessState, out.String()
}

func TestRealCapOOMKills(t *testing.T) {
	c := realCgroup(t, 64<<20)
	st, out := runHog(t, c, 512<<20)
	ws := st.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("hog was not killed by the cap: %v, output %q", st, out)
	}
	oom, err := c.OOMKilled()
	if err != nil {
		t.Fatal(err)
	}
	if !oom {
		e, _ := c.ReadEvents()
		t.Errorf("the kill was not classified as a kernel OOM kill: events %+v", e)
	}
}

func TestRealUnderCapNoOOM(t *testing.T) {
	c := realCgroup(t, 256<<20)
	st, _ := runHog(t, c, 32<<20)
	if !st.Success() {
		t.Fatalf("hog under the cap failed: %v", st)
	}
	if oom, err := c.OOMKilled(); err != nil || oom {
		t.Errorf("OOMKilled = %v, %v; want false", oom, err)
	}
	e, _ := c.ReadEvents()
	if c.Version == 1 && e.Peak < 32<<20 {
		t.Errorf("peak %d below the 32 MiB the hog touched", e.Peak)
	}
}
