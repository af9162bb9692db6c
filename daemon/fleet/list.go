package fleet

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"
)

// maxListed bounds how many artifacts a listing reads.
const maxListed = 1000

// Entry is one engine the registry holds, as its manifest describes it
// (annotations checked for hostile content, not for truth).
type Entry struct {
	Tag         string
	Digest      string
	EngineSize  int64
	Annotations map[string]string
	Created     time.Time
}

// Model is the model's sha256 the entry says it was built from.
func (e Entry) Model() string { return e.Annotations[AnnModel] }

// Fits says whether the entry's annotations name this device's builder:
// what `trtd fleet ls` shows. A pull still verifies the provenance.
func (e Entry) Fits(d Device) bool {
	a := e.Annotations
	return a[AnnTensorRT] == d.Builder.TensorRT && a[AnnCC] == d.Builder.ComputeCapability &&
		a[AnnGPU] == d.Builder.GPU && a[AnnSoC] == d.SoC && a[AnnL4T] == d.L4T
}

// List returns the engines in the repository, those built from modelSHA
// when it is not "", newest first. Artifacts that are not readable trtd
// engines are left out and counted in skipped.
func (c *Client) List(ctx context.Context, modelSHA string) (out []Entry, skipped int, err error) {
	var tags []string
	prefix := ""
	if modelSHA != "" {
		prefix = modelPrefix(modelSHA) + "-"
	}
	lctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()
	err = c.repo.Tags(lctx, "", func(page []string) error {
		for _, t := range page {
			if strings.HasPrefix(t, prefix) && len(tags) < maxListed {
				tags = append(tags, t)
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(classify("", err), ErrNotFound) {
			return nil, 0, nil // an empty repository
		}
		return nil, 0, classify("list tags", err)
	}
	for _, t := range tags {
		desc, m, err := c.fetchManifest(ctx, t)
		if errors.Is(err, ErrUnavailable) {
			return out, skipped, err
		}
		if err != nil {
			skipped++
			continue
		}
		e := Entry{Tag: t, Digest: desc.Digest.String(), Annotations: m.Annotations}
		e.Created, _ = time.Parse(time.RFC3339, m.Annotations[AnnCreated])
		for _, l := range m.Layers {
			if l.MediaType == MediaEngine {
				e.EngineSize = l.Size
			}
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, skipped, nil
}

// FirstStage returns the stage that worked first for modelSHA on devices
// of kind, as the newest artifact built on such a device records it; ""
// when none is known. It is the planner's history shared through the
// registry: a device that must build anyway (no engine for its TensorRT
// yet) starts where its peers succeeded. The caller checks the name
// against its own ladder.
func (c *Client) FirstStage(ctx context.Context, modelSHA, kind string) (string, error) {
	if kind == "" {
		return "", nil
	}
	es, _, err := c.List(ctx, modelSHA)
	if err != nil {
		return "", err
	}
	for _, e := range es {
		if e.Annotations[AnnKind] == kind && e.Model() == modelSHA && e.Annotations[AnnStage] != "" {
			return e.Annotations[AnnStage], nil
		}
	}
	return "", nil
}
