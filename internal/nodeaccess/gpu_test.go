package nodeaccess

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIsGPUNode(t *testing.T) {
	for path, want := range map[string]bool{
		"/dev/nvidiactl": true, "/dev/nvidia0": true, "/dev/nvidia-uvm": true,
		"/dev/nvmap": true, "/dev/nvhost-ctrl-gpu": true, "/dev/nvgpu/igpu0/ctrl": true,
		"/dev/nvidia-caps/nvidia-cap1": true, "/dev/nvgpu/igpu0/x/y": true, "/dev/nvhost-dbg-gpu": true,
		"/dev/nvmap (deleted)": true, "/dev/nvidia0 (deleted)": true, "/dev/null (deleted)": false,
		"/dev/null": false, "/dev/nvmapx": false, "/dev/nvgpu": false, "/tmp/nvidia0": false,
		"/dev/dri/renderD128": false, "nvidia0": false, "/dev/nvhost": false,
	} {
		if got := IsGPUNode(path); got != want {
			t.Errorf("%s: %v, want %v", path, got, want)
		}
	}
}

// GPUNodes finds Jetson's and a discrete GPU's nodes under a test tree,
// sorted, with the identity's access; other files and directories are not
// nodes.
func TestGPUNodes(t *testing.T) {
	d := t.TempDir()
	for _, n := range []string{"nvmap", "nvhost-ctrl-gpu", "nvidiactl", "nvgpu/igpu0/ctrl", "null", "nvmapx",
		// L4T's tools' nodes (group debug, or root alone): not CUDA's.
		"nvhost-dbg-gpu", "nvhost-prof-gpu", "nvhost-ctxsw-gpu", "nvhost-sched-gpu", "nvgpu/igpu0/prof-dev", "nvgpu/igpu0/nvsched"} {
		p := filepath.Join(d, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(d, "nvidia-caps"), 0o755); err != nil {
		t.Fatal(err)
	}
	uid, gids := Self()
	var got []string
	for _, n := range GPUNodes(d, uid, gids) {
		got = append(got, strings.TrimPrefix(n.Path, d+"/"))
		if !n.OK || n.Group == "" || !strings.HasSuffix(n.Owner, ":"+n.Group) || !strings.HasSuffix(n.String(), " 0600)") {
			t.Errorf("%+v (%s)", n, n)
		}
	}
	if s := strings.Join(got, " "); s != "nvgpu/igpu0/ctrl nvhost-ctrl-gpu nvidiactl nvmap" {
		t.Errorf("nodes %s", s)
	}
	if uid != 0 {
		t.Skip("the stranger's view needs files another uid owns")
	}
	for _, n := range GPUNodes(d, 99999, []uint32{99999}) {
		if n.OK {
			t.Errorf("a stranger may open %s (0600, owned by root)", n.Path)
		}
	}
}
