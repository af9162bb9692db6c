package config

import "github.com/trtd/trtd/converter"

// Converter turns the TOML stage into the stage the converter runs.
func (s Stage) Converter() converter.Stage {
	return converter.Stage{
		Name:       s.Name,
		Kind:       converter.Kind(s.Kind),
		Settings:   s.Settings(),
		Swap:       converter.SwapPolicy(s.Swap),
		DropCaches: s.DropCaches,
		Parts:      s.Parts,
		Timeout:    s.Timeout.D(),
	}
}

// ConverterStages converts a ladder.
func ConverterStages(stages []Stage) []converter.Stage {
	out := make([]converter.Stage, len(stages))
	for i, s := range stages {
		out[i] = s.Converter()
	}
	return out
}
