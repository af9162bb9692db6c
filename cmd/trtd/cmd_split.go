package main

import (
	"context"
	"encoding/json"
	"path/filepath"

	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/internal/bytesize"
	"github.com/trtd/trtd/internal/cliout"
)

func init() {
	register(&command{
		Name:    "split",
		Summary: "split an ONNX model into K sub-models run in sequence",
		Usage: `Usage: trtd split MODEL --parts K (--out DIR | --dry-run) [--json] [--sync]

Splits MODEL's graph into K parts at cuts chosen in topological order: the
largest part's weights stay within 10% of the best possible, and among such
cuts the bytes of the values crossing them are smallest. Writes
DIR/part1.onnx .. DIR/partK.onnx and DIR/manifest.json, which maps each part's
inputs to the model's inputs or to earlier parts' outputs. Weights are copied
file to file by byte range, so memory stays at a few MiB whatever the model's
size. This is what the ladder's "segmented" stage builds; docs/SEGMENTED.md
tells how to run the parts in sequence.

--dry-run prints the same plan and writes nothing. Like cp, trtd split
leaves the writing back to the kernel; --sync fsyncs the parts and the
manifest before exiting.

Prints one line per part (nodes, weight bytes, inputs, outputs) and the
bytes crossing each cut; with --json, the manifest.

Exit status: 0 ok, 1 the model cannot be read or split (the reason is
printed), 2 usage error.

Example:
  trtd split resnet50.onnx --parts 4 --out resnet50.parts
  trtd split vgg16.onnx --parts 3 --dry-run`,
		Run: runSplit,
	})
}

func runSplit(ctx context.Context, e *Env, args []string) int {
	fs := newFlagSet("split", e)
	k := fs.Int("parts", 2, "number of parts `K`")
	out := fs.String("out", "", "output `DIR` (created if missing)")
	asJSON := fs.Bool("json", false, "print the manifest as JSON")
	sync := fs.Bool("sync", false, "fsync the parts and the manifest before exiting")
	dry := fs.Bool("dry-run", false, "plan the split and print it, write nothing (--out not needed)")
	if code, done := parse(fs, args); done {
		return code
	}
	if fs.NArg() != 1 || (*out == "" && !*dry) {
		cliout.Fprintln(e.Stderr, "trtd split: want one MODEL argument and --out DIR or --dry-run (trtd split -h for help)")
		return 2
	}
	if *k < 1 {
		cliout.Fprintln(e.Stderr, "trtd split: --parts must be at least 1")
		return 2
	}
	man, err := onnx.SplitWith(fs.Arg(0), *k, *out, onnx.SplitOptions{Sync: *sync, DryRun: *dry})
	if err != nil {
		cliout.Fprintf(e.Stderr, "trtd split: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(e.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(man); err != nil {
			cliout.Fprintf(e.Stderr, "trtd split: %v\n", err)
			return 1
		}
		return 0
	}
	for _, p := range man.Parts {
		cliout.Fprintf(e.Stdout, "%s  %4d nodes  %9s weights  %d inputs  %d outputs  (%s .. %s)\n",
			p.File, p.Nodes, bytesize.Format(p.WeightBytes), len(p.Inputs), len(p.Outputs), p.FirstNode, p.LastNode)
	}
	for _, c := range man.Cuts {
		exact := ""
		for _, t := range c.Tensors {
			if !t.Exact {
				exact = " (at least; dynamic dims counted as 1)"
			}
		}
		cliout.Fprintf(e.Stdout, "cut after part %d: %d values, %s%s\n", c.After, len(c.Tensors), bytesize.Format(c.Bytes), exact)
	}
	if !*dry {
		cliout.Fprintf(e.Stdout, "manifest: %s\n", filepath.Join(*out, onnx.ManifestFile))
	}
	return 0
}
