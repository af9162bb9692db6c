package report

import (
	"fmt"
	"strings"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/converter/trt/version"
)

// SettingsOn splits a stage's settings into those the TensorRT release trt
// ("8.2.1") applied and those it skipped, each skipped one with why
// ("optimization level 3: exists from TensorRT 8.6; this is TensorRT
// 8.2.1"). Which settings exist on which release comes from
// converter/trt/version; worker notes (the worker's own skip list: a
// platform without fast FP16, the DLA, a default workspace) are added as
// the worker wrote them. With trt unknown ("", no builder ran) nothing can
// be said: both lists are nil.
func SettingsOn(s protocol.Settings, trt string, worker []string) (applied, skipped []string) {
	v, err := version.Parse(trt)
	if trt == "" || err != nil {
		return nil, nil
	}
	notes := map[string]bool{} // worker notes about settings, by the setting they name
	for _, w := range worker {
		key, _, _ := strings.Cut(w, ":")
		switch {
		case strings.HasPrefix(key, "tactic source "), key == version.SettingOptimizationLevel,
			key == version.SettingMaxAuxStreams, key == version.SettingTacticDRAM:
			continue // said below, from the version table
		case strings.HasPrefix(key, "precision "):
			notes[key] = true
		case strings.HasPrefix(key, "dla_core"):
			notes["dla"] = true
		}
		skipped = append(skipped, w)
	}
	skip := func(what, why string) {
		skipped = append(skipped, fmt.Sprintf("%s: %s; this is TensorRT %s", what, why, v))
	}
	applied = append(applied, "precision "+appliedPrecision(s.Precision, notes))
	switch {
	case s.WorkspaceMiB > 0:
		applied = append(applied, fmt.Sprintf("workspace %d MiB", s.WorkspaceMiB))
	case !v.AtLeast(8, 4):
		applied = append(applied, fmt.Sprintf("workspace %d MiB (trtd's default: TensorRT %s has none)", version.DefaultWorkspaceMiB, v.Short()))
	default:
		applied = append(applied, "workspace: TensorRT's default (all device memory)")
	}
	if s.TF32 != nil {
		applied = append(applied, fmt.Sprintf("TF32 %s", onOff(*s.TF32)))
	}
	if s.TacticSources != nil {
		var on []string
		for _, name := range s.TacticSources {
			if ok, why, known := version.TacticSourceAvailable(name, v); ok || !known {
				on = append(on, name)
			} else {
				skip("tactic source "+name, why)
			}
		}
		if len(on) == 0 {
			applied = append(applied, "tactic sources: none enabled")
		} else {
			applied = append(applied, "tactic sources ["+strings.Join(on, ", ")+"]")
		}
	}
	versioned := []struct {
		key, label string
		set        bool
		value      int64
		unit       string
	}{
		{version.SettingOptimizationLevel, "optimization level", s.OptimizationLevel != nil, derefInt(s.OptimizationLevel), ""},
		{version.SettingMaxAuxStreams, "aux streams", s.MaxAuxStreams != nil, derefInt(s.MaxAuxStreams), ""},
		{version.SettingTacticDRAM, "tactic DRAM", s.TacticDRAMMiB > 0, s.TacticDRAMMiB, " MiB"},
	}
	for _, it := range versioned {
		if !it.set {
			continue
		}
		label := fmt.Sprintf("%s %d%s", it.label, it.value, it.unit)
		if ok, why, _ := version.SettingAvailable(it.key, v); ok {
			applied = append(applied, label)
		} else {
			skip(label, why)
		}
	}
	if s.DLACore != nil && !notes["dla"] {
		d := fmt.Sprintf("DLA core %d", *s.DLACore)
		if s.GPUFallback {
			d += " with GPU fallback"
		}
		applied = append(applied, d)
	}
	if s.TimingCache {
		applied = append(applied, "timing cache")
	}
	return applied, skipped
}

// appliedPrecision is the precision the builder got once the platform's
// notes are taken into account: without fast INT8 an int8 stage builds
// FP16 kernels, without fast FP16 FP32 ones.
func appliedPrecision(p string, notes map[string]bool) string {
	switch {
	case p == "":
		return "fp32 (default)"
	case p == protocol.PrecisionINT8 && notes["precision int8"] && notes["precision fp16"],
		p == protocol.PrecisionFP16 && notes["precision fp16"]:
		return "fp32 (the platform has no fast " + strings.ToUpper(p) + ")"
	case p == protocol.PrecisionINT8 && notes["precision int8"]:
		return "fp16 (the platform has no fast INT8)"
	}
	return p
}

func derefInt(p *int) int64 {
	if p == nil {
		return 0
	}
	return int64(*p)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// requested renders settings as asked for, when the TensorRT release is
// unknown and nothing can be said about what applies.
func requested(s protocol.Settings) string {
	set := []string{"precision " + orDefault(s.Precision), fmt.Sprintf("workspace %d MiB", s.WorkspaceMiB)}
	if s.TacticSources != nil {
		set = append(set, "tactic sources ["+strings.Join(s.TacticSources, ", ")+"]")
	}
	if s.OptimizationLevel != nil {
		set = append(set, fmt.Sprintf("optimization level %d", *s.OptimizationLevel))
	}
	if s.MaxAuxStreams != nil {
		set = append(set, fmt.Sprintf("aux streams %d", *s.MaxAuxStreams))
	}
	if s.TacticDRAMMiB > 0 {
		set = append(set, fmt.Sprintf("tactic DRAM %d MiB", s.TacticDRAMMiB))
	}
	if s.DLACore != nil {
		set = append(set, fmt.Sprintf("DLA core %d", *s.DLACore))
	}
	return strings.Join(set, ", ")
}
