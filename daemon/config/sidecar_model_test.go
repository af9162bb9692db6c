package config

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckSidecarModel(t *testing.T) {
	inputs := []ModelInput{
		{Name: "images", RankKnown: true, Dims: []int64{-1, 3, -1, -1}},
		{Name: "scale", RankKnown: true, Dims: []int64{1}},
		{Name: "any", RankKnown: false},
	}
	for _, tc := range []struct {
		name string
		toml string
		want []string // each a substring of one problem; nil = accepted
	}{
		{"matches", "[[shape]]\ninput = \"images\"\nmin = [1,3,320,320]\nopt = [1,3,640,640]\nmax = [4,3,640,640]\n", nil},
		{"opt left out", "[[shape]]\ninput = \"images\"\nmin = [1,3,320,320]\nmax = [1,3,640,640]\n", nil},
		{"unknown rank takes any", "[[shape]]\ninput = \"any\"\nmin = [1]\nmax = [8]\n", nil},
		{"no such input", "precision = \"fp16\"\n\n[[shape]]\ninput = \"image\"\nmin = [1,3,320,320]\nmax = [1,3,640,640]\n",
			[]string{`m.toml:3: shape[0].input: the model has no input "image" (its inputs: "images", "scale", "any")`}},
		{"wrong rank", "[[shape]]\ninput = \"images\"\nmin = [1,320,320]\nopt = [1,320,320]\nmax = [1,640,640]\n",
			[]string{"m.toml:1: shape[0].min (images): rank 3, the model's input has rank 4 ([?, 3, ?, ?])", "shape[0].opt", "shape[0].max"}},
		{"static dimension changed", "[[shape]]\ninput = \"images\"\nmin = [1,3,320,320]\nmax = [1,3,640,640]\n\n[[shape]]\ninput = \"scale\"\nmin = [1]\nmax = [2]\n",
			[]string{"m.toml:6: shape[1] (scale): dim 0 is fixed at 1 in the model, so min, opt and max must all be 1 (got 1, 2, 2)"}},
		{"static channel dimension", "[[shape]]\ninput = \"images\"\nmin = [1,1,320,320]\nmax = [1,3,640,640]\n",
			[]string{"shape[0] (images): dim 1 is fixed at 3"}},
		{"all problems at once", "[[shape]]\ninput = \"nope\"\nmin = [1]\nmax = [1]\n[[shape]]\ninput = \"scale\"\nmin = [2]\nmax = [2]\n",
			[]string{"m.toml:1: shape[0].input", "m.toml:5: shape[1] (scale): dim 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSidecar("m.toml", []byte(tc.toml), nil)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			err = CheckSidecarModel("m.toml", []byte(tc.toml), s, inputs)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if n := strings.Count(err.Error(), "\n  "); n != len(tc.want) {
				t.Errorf("%d problems, want %d:\n%v", n, len(tc.want), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// FuzzCheckSidecarModel: any settings file text, parsed and checked
// against a model, gives an answer (nil or ErrInvalid), never a panic.
func FuzzCheckSidecarModel(f *testing.F) {
	f.Add("[[shape]]\ninput = \"images\"\nmin = [1,3,320,320]\nmax = [4,3,640,640]\n")
	f.Add("[[shape]]\ninput = \"scale\"\nmin = [1]\nmax = [2]\n[[ shape ]]\ninput = \"x\"\nmin = []\nmax = []\n")
	f.Add("precision = \"fp16\"\n")
	inputs := []ModelInput{{Name: "images", RankKnown: true, Dims: []int64{-1, 3, -1, -1}}, {Name: "scale", RankKnown: true, Dims: []int64{1}}, {Name: "any"}}
	f.Fuzz(func(t *testing.T, text string) {
		s, err := ParseSidecar("m.toml", []byte(text), nil)
		if err != nil {
			return
		}
		if err := CheckSidecarModel("m.toml", []byte(text), s, inputs); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("error %v is not ErrInvalid", err)
		}
	})
}
