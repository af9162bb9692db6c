package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/daemon/outbox"
	"github.com/trtd/trtd/internal/atomicfile"
)

// howToRun is the manifest's note for users of the part engines.
const howToRun = "Run the engines in order. Feed part 1 the model's inputs; feed each later part's inputs from the model inputs or the earlier parts' outputs named in its \"inputs\" list. The model's outputs are listed under \"outputs\" with the part that produces each."

// splitter returns the segmented stage's splitter: the worker cuts the
// model into parts inside its directory (weights copied by byte range,
// memory bounded); the daemon names each part's engine in the manifest and
// writes it for the outbox.
func (rn *Runner) splitter() func(ctx context.Context, in converter.Input, parts int) ([]converter.Part, string, error) {
	return func(ctx context.Context, in converter.Input, parts int) ([]converter.Part, string, error) {
		m, err := rn.Worker.Split(ctx, in, parts, nil)
		if err != nil {
			return nil, "", err
		}
		base := outbox.Name(strings.TrimSuffix(in.Model, ".onnx"))
		var out []converter.Part
		for i := range m.Parts {
			p := &m.Parts[i]
			p.Engine = fmt.Sprintf("%s.part%d.engine", base, i+1)
			out = append(out, converter.Part{Model: filepath.Join(protocol.SegmentsDir, p.File), Engine: fmt.Sprintf("part%d.engine", i+1)})
		}
		m.HowToRun = howToRun
		manifest := filepath.Join(in.EngineDir, "manifest.json")
		b, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return nil, "", err
		}
		if err := atomicfile.WriteFile(manifest, append(b, '\n'), 0o644); err != nil {
			return nil, "", err
		}
		return out, manifest, nil
	}
}
