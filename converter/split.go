package converter

import (
	"context"
	"errors"
	"fmt"

	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/converter/protocol"
)

// ErrSplit means the worker could not cut the model into parts.
var ErrSplit = errors.New("the worker could not split the model")

// Split has the worker cut the model into parts (op "split") under
// in.WorkDir/protocol.SegmentsDir and returns the manifest. The graph walk
// runs in the unprivileged worker, never in the daemon.
func (w *Worker) Split(ctx context.Context, in Input, parts int, sb Sandbox) (*onnx.Manifest, error) {
	r := w.RunWorker(ctx, protocol.Request{Op: protocol.OpSplit, WorkDir: in.WorkDir, Model: in.Model, Parts: parts}, sb, nil)
	if r.Class != protocol.ClassOK || r.Result == nil || r.Result.Split == nil {
		reason := r.Reason
		if r.Result != nil && r.Result.Message != "" {
			reason = r.Result.Message
		}
		if reason == "" {
			reason = string(r.Class)
		}
		return nil, fmt.Errorf("%w: %s", ErrSplit, reason)
	}
	return r.Result.Split, nil
}
