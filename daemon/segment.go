package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/daemon/fsutil"
)

// splitModel is the segmented stage's splitter: it cuts the model into
// parts inside the worker's directory (weights copied by byte range, memory
// bounded) and writes the outbox manifest, which names each part's engine
// and where each of its inputs comes from.
func splitModel(ctx context.Context, in converter.Input, parts int) ([]converter.Part, string, error) {
	dir := filepath.Join(in.WorkDir, "segments")
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	m, err := onnx.Split(filepath.Join(in.WorkDir, in.Model), parts, dir)
	if err != nil {
		return nil, "", err
	}
	base := outName(strings.TrimSuffix(in.Model, ".onnx"))
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, "", err
	}
	var doc map[string]any
	json.Unmarshal(raw, &doc)
	var out []converter.Part
	ps, _ := doc["parts"].([]any)
	for i, p := range m.Parts {
		engine := fmt.Sprintf("%s.part%d.engine", base, i+1)
		out = append(out, converter.Part{Model: filepath.Join("segments", p.File), Engine: fmt.Sprintf("part%d.engine", i+1)})
		if i < len(ps) {
			if pm, ok := ps[i].(map[string]any); ok {
				pm["engine"] = engine
			}
		}
	}
	doc["how_to_run"] = "Run the engines in order. Feed part 1 the model's inputs; feed each later part's inputs from the model inputs or the earlier parts' outputs named in its \"inputs\" list. The model's outputs are listed under \"outputs\" with the part that produces each."
	manifest := filepath.Join(in.EngineDir, "manifest.json")
	b, _ := json.MarshalIndent(doc, "", "  ")
	if err := fsutil.WriteFileAtomic(manifest, append(b, '\n'), 0o644); err != nil {
		return nil, "", err
	}
	return out, manifest, nil
}

var partNumber = regexp.MustCompile(`part(\d+)\.engine$`)

// sortByPart orders names by the N of their "partN.engine" suffix (names
// without one keep their relative order, before the parts): part2 comes
// before part10, which a text sort gets wrong.
func sortByPart(names []string) []string {
	n := func(s string) int {
		m := partNumber.FindStringSubmatch(s)
		if m == nil {
			return 0
		}
		v, _ := strconv.Atoi(m[1])
		return v
	}
	out := append([]string(nil), names...)
	sort.SliceStable(out, func(i, j int) bool { return n(out[i]) < n(out[j]) })
	return out
}
