package report

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/trtd/trtd/converter/opsupport"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/internal/bytesize"
	"github.com/trtd/trtd/internal/device"
)

// NoTensorRTAdvice begins the device diagnosis's recommendation to install
// TensorRT. A report whose build found a TensorRT never carries it.
const NoTensorRTAdvice = "TensorRT was not found"

// Complete fills what follows from the report's facts before it is
// written: per attempt, the settings the installed TensorRT applied and
// those it skipped; and the recommendations the outcome calls for, ahead
// of the device's general ones. Publish calls it; calling it again adds
// nothing.
func (r *Report) Complete() {
	trt := ""
	if r.Builder != nil {
		trt = r.Builder.TensorRT
	}
	for i := range r.Attempts {
		a := &r.Attempts[i]
		if a.Applied == nil && a.Kind != "offload" {
			if ap, sk := SettingsOn(a.Settings, trt, a.Skipped); ap != nil {
				a.Applied, a.Skipped = ap, sk
			}
		}
	}
	var keep []string
	for _, s := range r.Recommendations {
		if trt != "" && strings.HasPrefix(s, NoTensorRTAdvice) {
			continue // the build found one: the device probe looked elsewhere
		}
		keep = append(keep, s)
	}
	recs := Recommend(r)
	for _, s := range keep {
		if !contains(recs, s) && !superseded(s, recs) {
			recs = append(recs, s)
		}
	}
	r.Recommendations = recs
}

// supersedes are phrases that mark advice on one subject: a device
// recommendation on a subject an outcome recommendation already covers
// (with the figures of this build) is left out.
var supersedes = []string{"systemctl isolate multi-user.target", "SD card", "sudo apt install nvidia-tensorrt"}

func superseded(s string, recs []string) bool {
	for _, k := range supersedes {
		if !strings.Contains(s, k) {
			continue
		}
		for _, r := range recs {
			if strings.Contains(r, k) {
				return true
			}
		}
	}
	return false
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// Recommend says what to do next, from the outcome and its class. Each
// rule is table-tested against the outcome that triggers it.
func Recommend(r *Report) []string {
	dev := device.Device{}
	if r.Device != nil {
		dev = *r.Device
	}
	var out []string
	out = append(out, permissionAdvice(r)...)
	switch {
	case r.Outcome == OutcomeFailed && allOOM(r.Attempts):
		out = append(out, oomAdvice(r, dev)...)
	case r.Outcome == OutcomeFailed:
		out = append(out, unsupportedAdvice(r)...)
	case r.Outcome == OutcomeBuilt:
		out = append(out, guardKillAdvice(r)...)
	case r.Outcome == OutcomeBuilderUnavailable:
		out = append(out, waitingAdvice(r.Reason))
	}
	return out
}

// oomClass reports whether an attempt ended for lack of memory.
func oomClass(a *Attempt) bool {
	return a.Outcome == protocol.ClassOutOfMemory || (a.Memory != nil && (a.Memory.Killed || a.Memory.CgroupOOM))
}

func allOOM(atts []Attempt) bool {
	n := 0
	for i := range atts {
		a := &atts[i]
		if a.Outcome == "skipped" || a.DurationMs == 0 && a.Memory == nil && a.Outcome != protocol.ClassOutOfMemory {
			continue // never ran
		}
		if !oomClass(a) {
			return false
		}
		n++
	}
	return n > 0
}

// peakOf is the largest memory in use (RAM used + swap used) and worker
// RSS over all attempts.
func peakOf(atts []Attempt, memTotal int64) (used, rss int64) {
	for _, a := range atts {
		if a.Memory == nil {
			continue
		}
		for _, s := range a.Memory.Samples {
			tot := s.MemTotal
			if tot == 0 {
				tot = memTotal
			}
			if tot > 0 {
				used = max(used, tot-s.MemAvailable+s.SwapUsed)
			}
			rss = max(rss, s.WorkerRSS)
		}
		rss = max(rss, a.Memory.Peak.WorkerRSS)
	}
	return used, rss
}

func oomAdvice(r *Report, dev device.Device) []string {
	var out []string
	used, rss := peakOf(r.Attempts, dev.MemTotal)
	fig := ""
	if rss > 0 {
		fig = fmt.Sprintf(" The worker reached %s of RAM", bytesize.Format(rss))
		if dev.MemTotal > 0 {
			fig += fmt.Sprintf(" (%s in use on the board at the peak, of %s RAM + %s swap)", bytesize.Format(used), bytesize.Format(dev.MemTotal), bytesize.Format(dev.SwapTotal))
		}
		fig += "."
	}
	out = append(out, fmt.Sprintf("Every stage ran out of memory.%s Try these, in order:", fig))
	if len(dev.Desktop) > 0 {
		out = append(out, fmt.Sprintf("Stop the desktop while building (%s hold RAM the build needs): sudo systemctl isolate multi-user.target; sudo systemctl isolate graphical.target brings it back.",
			strings.Join(dev.Desktop, ", ")))
	}
	var sd []string
	for _, s := range dev.Swaps {
		if s.Medium == "sd" {
			sd = append(sd, s.Path)
		}
	}
	if dev.SwapDirMedium == "sd" && (len(sd) == 0 || !strings.HasPrefix(sd[0], dev.SwapDir+"/")) {
		sd = append(sd, dev.SwapDir)
	}
	switch {
	case len(sd) > 0:
		where := "a USB 3 disk or NVMe drive"
		if dev.HasNVMe {
			where = "the NVMe drive"
		}
		out = append(out, fmt.Sprintf("Put swap on %s instead of the SD card (%s): set swap.dir in /etc/trtd/config.toml to a directory there. Swap helps only the CPU side of a build; GPU memory never goes to swap.",
			where, strings.Join(sd, ", ")))
	case dev.SwapTotal == 0 && len(dev.Swaps) == 0:
		out = append(out, "Give the build swap on a USB 3 disk or NVMe drive (swap.enabled and swap.dir in /etc/trtd/config.toml). Swap helps only the CPU side of a build; GPU memory never goes to swap.")
	}
	weights := int64(0)
	dynamic := []string{}
	if sum := r.Model.Summary; sum != nil {
		weights = sum.Initializers.Bytes
		for i := range sum.Inputs {
			if sum.Inputs[i].Dynamic() {
				dynamic = append(dynamic, sum.Inputs[i].Name)
			}
		}
	}
	parts := 0
	for _, a := range r.Attempts {
		if a.Part > parts {
			parts = a.Part
		}
	}
	w := ""
	if weights > 0 {
		w = fmt.Sprintf(" (the weights are %s; each part holds about 1/N of them)", bytesize.Format(weights))
	}
	if parts > 0 {
		out = append(out, fmt.Sprintf("Split the model into more parts: the segmented stage used %d; set parts = %d on it in /etc/trtd/config.toml%s.", parts, parts*2, w))
	} else {
		out = append(out, fmt.Sprintf("Build the model in parts: add a stage with kind = \"segmented\" and parts = 2 (or more) to the ladder in /etc/trtd/config.toml%s.", w))
	}
	if len(dynamic) > 0 {
		base := strings.TrimSuffix(r.Model.Name, ".onnx")
		out = append(out, fmt.Sprintf("Lower the max shapes of %s in %s.toml's [[shape]] tables: TensorRT plans memory for the largest shape.",
			strings.Join(quoteAll(dynamic), ", "), base))
	}
	offloaded := false
	for _, a := range r.Attempts {
		offloaded = offloaded || a.Kind == "offload"
	}
	if !offloaded {
		tied := ""
		if b := r.Builder; b != nil && b.TensorRT != "" {
			tied = fmt.Sprintf(" (TensorRT %s, compute capability %s)", b.TensorRT, orDash(b.ComputeCapability))
		}
		out = append(out, fmt.Sprintf("Offload the build to a peer with more memory and the same board and JetPack%s: [offload] peers in /etc/trtd/config.toml. An engine runs only where the TensorRT and GPU match.", tied))
	}
	return out
}

func quoteAll(l []string) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// guardKillAdvice explains, for a build that succeeded after the memory
// guard stopped earlier stages, what runs next time and why.
func guardKillAdvice(r *Report) []string {
	var killed []string
	var okStage string
	for i := range r.Attempts {
		a := &r.Attempts[i]
		switch {
		case a.Outcome == protocol.ClassOK:
			okStage = a.Stage
		case oomClass(a):
			what := "ran out of memory"
			if a.Memory != nil && a.Memory.Killed {
				what = fmt.Sprintf("was stopped by the memory guard after %s", dur(a.Memory.KilledAtMs))
			}
			killed = append(killed, fmt.Sprintf("stage %s %s", a.Stage, what))
		}
	}
	if len(killed) == 0 || okStage == "" {
		return nil
	}
	return []string{fmt.Sprintf("%s. Next time this model (same sha256) is built on this device, trtd starts at stage %s, the stage that fit: it remembers the stage per model, so the stages that ran out of memory are not tried again.",
		upperFirst(strings.Join(killed, "; ")), okStage)}
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

var (
	reOpName = regexp.MustCompile(`\bop(?: type)?:? "?([A-Za-z_][\w.]*)`)
	reNodeID = regexp.MustCompile(`\bnode (\d+|"[^"]*")`)
)

// unsupportedAdvice names, for a failure on an operator, the node, the op
// and which TensorRT releases' ONNX parsers list the op as supported.
func unsupportedAdvice(r *Report) []string {
	var reason string
	for _, a := range r.Attempts {
		if a.Outcome == protocol.ClassUnsupportedModel {
			reason = a.Reason
		}
	}
	if reason == "" {
		return nil
	}
	m := reOpName.FindStringSubmatch(reason)
	if m == nil {
		return []string{"TensorRT's ONNX parser refused the model; the attempt's log lines name the node. Simplifying the model (onnxsim) or exporting it with another opset often helps."}
	}
	op := m[1]
	node := ""
	if n := reNodeID.FindStringSubmatch(reason); n != nil {
		node = " at node " + n[1]
	}
	var yes, no []string
	for _, v := range opsupport.Versions() {
		t, _, err := opsupport.For(v)
		if err != nil {
			continue
		}
		if t.Status("", op) == opsupport.Supported {
			yes = append(yes, v)
		} else {
			no = append(no, v)
		}
	}
	installed := ""
	if r.Builder != nil && r.Builder.TensorRT != "" {
		installed = fmt.Sprintf(" This device has TensorRT %s.", r.Builder.TensorRT)
	}
	if len(yes) == 0 {
		return []string{fmt.Sprintf("Operator %s%s is in no TensorRT ONNX parser's operator list (%s): it needs a TensorRT plugin, or export the model without it.%s",
			op, node, strings.Join(no, ", "), installed)}
	}
	return []string{fmt.Sprintf("Operator %s%s: the ONNX parsers of TensorRT %s list it as supported, those of %s do not.%s Upgrade JetPack if your board supports a listed release (the Jetson Nano's last, JetPack 4.6.x, has TensorRT 8.2), or replace the op when exporting.",
		op, node, strings.Join(yes, ", "), orNoneList(no), installed)}
}

func orNoneList(l []string) string {
	if len(l) == 0 {
		return "no release"
	}
	return strings.Join(l, ", ")
}

// permissionAdvice names the group that gives access, when a file could
// not be read or written for lack of permission.
func permissionAdvice(r *Report) []string {
	texts := []string{r.Reason}
	for _, a := range r.Attempts {
		texts = append(texts, a.Reason)
	}
	for _, t := range texts {
		lt := strings.ToLower(t)
		if (strings.Contains(lt, "permission denied") || strings.Contains(lt, "group video")) &&
			(strings.Contains(lt, "/dev/nv") || strings.Contains(lt, "cuda") || strings.Contains(lt, "group video")) {
			return []string{"The worker could not open the GPU's device nodes. Add its user to group video: sudo adduser trtd video, then sudo systemctl restart trtd."}
		}
		if strings.Contains(lt, "permission denied") {
			return []string{"A file could not be read or written for lack of permission. Upload as a member of group trtd (sudo adduser $USER trtd, then log in again) so trtd's worker can read the model; files uploaded with mode 0600 by someone outside the group stay unreadable."}
		}
	}
	return nil
}

// waitingAdvice says how to get the builder that is missing.
func waitingAdvice(missing string) string {
	switch {
	case strings.Contains(missing, "worker binary not found"):
		return "Install trtd's package (sudo apt install ./trtd_<version>_arm64.deb), which puts the worker at /usr/lib/trtd/trtd-worker, or point [paths] worker in /etc/trtd/config.toml at it; trtd retries waiting models by itself."
	case strings.Contains(missing, "trtexec"):
		return "Install JetPack's TensorRT, which brings trtexec (sudo apt install nvidia-tensorrt; trtexec is /usr/src/tensorrt/bin/trtexec), or set worker.trtexec in /etc/trtd/config.toml to where it is; trtd retries waiting models by itself."
	}
	return "Install TensorRT (on a Jetson: sudo apt install nvidia-tensorrt, part of JetPack); the package's worker for that TensorRT (or trtexec) then builds, and trtd retries waiting models by itself. sudo trtd selftest checks the setup."
}
