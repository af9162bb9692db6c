package fleet

import (
	"fmt"
	"os"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/daemon/provenance"
	"github.com/trtd/trtd/internal/device"
)

// DeviceOf is this device as the fleet sees it: the worker's builder and
// the diagnosis's Jetson release, SoC, platform and memory.
func DeviceOf(b protocol.Builder, d *device.Device) Device {
	out := Device{Builder: b, Plugins: provenance.PluginHashes(b)}
	if len(out.Plugins) == 0 {
		out.Plugins = nil
	}
	if d != nil {
		if j := d.Jetson; j != nil {
			out.L4T, out.SoC = j.L4T, j.SoC
		}
		out.Kind = fmt.Sprintf("%s-%dG", d.Platform(), (d.MemTotal+(1<<29))>>30)
		out.Host = d.Hostname
	}
	if out.Host == "" {
		out.Host, _ = os.Hostname()
	}
	return out
}
