package trtexec

import (
	"fmt"
	"sort"
	"strings"

	"github.com/trtd/trtd/converter/trt/version"
)

// parserRelease names the samples/common/sampleOptions.cpp whose option
// parser a trtexec of version v runs. TensorRT publishes one parser per
// release branch of NVIDIA/TensorRT; the releases in between share the
// parser of the nearest one below (8.3 is 8.2's; 10.1 to 10.16 parse the
// flags trtd uses exactly as 10.8 does, checked on release/10.1, 10.3, 10.8,
// 10.13 and 10.16; 11.0 as 11.1). ok is false for releases trtd does not
// drive (older than 8.0, 9.x, newer than 11).
func parserRelease(v version.Version) (string, bool) {
	switch {
	case v.Major == 8 && v.Minor <= 1:
		return "8.0", true
	case v.Major == 8 && v.Minor <= 3:
		return "8.2", true
	case v.Major == 8 && v.Minor <= 6:
		return v.Short(), true
	case v.Major == 10 && v.Minor == 0:
		return "10.0", true
	case v.Major == 10:
		return "10.8", true
	case v.Major == 11:
		return "11.1", true
	}
	return "", false
}

// parserFlags is every flag trtd passes to trtexec, with the line of
// samples/common/sampleOptions.cpp (NVIDIA/TensorRT, branch release/<key>)
// where that release's parser takes it (getAndDelOption, getShapesBuild).
// A release missing from a row does not accept the flag: trtexec prints
// "Unknown option" and exits (samples/trtexec/trtexec.cpp, parse loop).
var parserFlags = []struct {
	flag string
	at   map[string]int
}{
	{"--onnx", map[string]int{"8.0": 426, "8.2": 434, "8.4": 554, "8.5": 653, "8.6": 703, "10.0": 965, "10.8": 983, "11.1": 1012}},
	{"--saveEngine", map[string]int{"8.0": 631, "8.2": 681, "8.4": 838, "8.5": 937, "8.6": 1063, "10.0": 1322, "10.8": 1386, "11.1": 1279}},
	{"--fp16", map[string]int{"8.0": 579, "8.2": 588, "8.4": 745, "8.5": 844, "8.6": 959, "10.0": 1197, "10.8": 1235}},
	{"--int8", map[string]int{"8.0": 580, "8.2": 589, "8.4": 746, "8.5": 845, "8.6": 960, "10.0": 1199, "10.8": 1237}},
	{"--calib", map[string]int{"8.0": 602, "8.2": 634, "8.4": 791, "8.5": 890, "8.6": 1016, "10.0": 1271, "10.8": 1334}},
	{"--noTF32", map[string]int{"8.0": 578, "8.2": 587, "8.4": 744, "8.5": 843, "8.6": 958, "10.0": 1196, "10.8": 1234, "11.1": 1213}},
	{"--workspace", map[string]int{"8.0": 565, "8.2": 574, "8.4": 692, "8.5": 791, "8.6": 889}},
	{"--memPoolSize", map[string]int{"8.4": 698, "8.5": 797, "8.6": 895, "10.0": 1112, "10.8": 1130, "11.1": 1124}},
	{"--tacticSources", map[string]int{"8.0": 641, "8.2": 691, "8.4": 848, "8.5": 947, "8.6": 1073, "10.0": 1332, "10.8": 1396, "11.1": 1294}},
	{"--builderOptimizationLevel", map[string]int{"8.6": 1163, "10.0": 1417, "10.8": 1481, "11.1": 1367}},
	{"--maxAuxStreams", map[string]int{"8.6": 1181, "10.0": 1440, "10.8": 1521, "11.1": 1412}},
	{"--useDLACore", map[string]int{"8.0": 722, "8.2": 774, "8.4": 933, "8.5": 1071, "8.6": 1261, "10.0": 1517, "10.8": 1605, "11.1": 1511}},
	{"--allowGPUFallback", map[string]int{"8.0": 723, "8.2": 775, "8.4": 934, "8.5": 1072, "8.6": 968, "10.0": 1225, "10.8": 1286, "11.1": 1224}},
	{"--minShapes", map[string]int{"8.0": 530, "8.2": 554, "8.4": 673, "8.5": 772, "8.6": 870, "10.0": 1064, "10.8": 1082, "11.1": 1099}},
	{"--optShapes", map[string]int{"8.0": 531, "8.2": 555, "8.4": 674, "8.5": 773, "8.6": 871, "10.0": 1065, "10.8": 1083, "11.1": 1100}},
	{"--maxShapes", map[string]int{"8.0": 532, "8.2": 556, "8.4": 675, "8.5": 774, "8.6": 872, "10.0": 1066, "10.8": 1084, "11.1": 1101}},
	{"--timingCacheFile", map[string]int{"8.0": 704, "8.2": 754, "8.4": 915, "8.5": 1018, "8.6": 1144, "10.0": 1403, "10.8": 1467, "11.1": 1353}},
	{"--buildOnly", map[string]int{"8.0": 748, "8.2": 802, "8.4": 750, "8.5": 849, "8.6": 971}},
	{"--skipInference", map[string]int{"8.6": 975, "10.0": 1228, "10.8": 1288, "11.1": 1226}},
	{"--iterations", map[string]int{"8.0": 734, "8.2": 786, "8.4": 945, "8.5": 1083, "8.6": 1292, "10.0": 1551, "10.8": 1641, "11.1": 1674}},
	{"--warmUp", map[string]int{"8.0": 736, "8.2": 788, "8.4": 947, "8.5": 1085, "8.6": 1294, "10.0": 1553, "10.8": 1643, "11.1": 1676}},
	{"--duration", map[string]int{"8.0": 735, "8.2": 787, "8.4": 946, "8.5": 1084, "8.6": 1293, "10.0": 1552, "10.8": 1642, "11.1": 1675}},
}

// tacticTokens are the names --tacticSources takes, with the line of
// sampleOptions.cpp that compares against each (`t == "CUBLAS"`; the
// parser upper-cases the name first and throws "Unknown tactic source" for
// any other).
var tacticTokens = []struct {
	source, token string
	at            map[string]int
}{
	{"cublas", "CUBLAS", map[string]int{"8.0": 667, "8.2": 717, "8.4": 874, "8.5": 973, "8.6": 1099, "10.0": 1358, "10.8": 1422}},
	{"cublaslt", "CUBLAS_LT", map[string]int{"8.0": 671, "8.2": 721, "8.4": 878, "8.5": 977, "8.6": 1103, "10.0": 1362, "10.8": 1426}},
	{"cudnn", "CUDNN", map[string]int{"8.0": 675, "8.2": 725, "8.4": 882, "8.5": 981, "8.6": 1107, "10.0": 1366, "10.8": 1430}},
	{"edge_mask_convolutions", "EDGE_MASK_CONVOLUTIONS", map[string]int{"8.4": 886, "8.5": 985, "8.6": 1111, "10.0": 1370, "10.8": 1434, "11.1": 1320}},
	{"jit_convolutions", "JIT_CONVOLUTIONS", map[string]int{"8.5": 989, "8.6": 1115, "10.0": 1374, "10.8": 1438, "11.1": 1324}},
}

// accepts reports whether trtexec v's option parser takes flag (with or
// without "=value").
func accepts(v version.Version, flag string) bool {
	rel, ok := parserRelease(v)
	if !ok {
		return false
	}
	flag, _, _ = strings.Cut(flag, "=")
	for _, f := range parserFlags {
		if f.flag == flag {
			_, ok := f.at[rel]
			return ok
		}
	}
	return false
}

// acceptsTactic reports whether v's --tacticSources takes the source (by
// its protocol name) and how that release spells it.
func acceptsTactic(v version.Version, source string) (token string, ok bool) {
	rel, ok := parserRelease(v)
	if !ok {
		return "", false
	}
	for _, t := range tacticTokens {
		if t.source == source {
			_, ok := t.at[rel]
			return t.token, ok
		}
	}
	return "", false
}

// checkArgs is the last guard before trtexec runs: every flag must be one
// v's parser accepts, every tactic source one it knows.
func checkArgs(v version.Version, args []string) error {
	var bad []string
	for _, a := range args {
		if !accepts(v, a) {
			bad = append(bad, a)
			continue
		}
		if spec, ok := strings.CutPrefix(a, "--tacticSources="); ok {
			for _, t := range strings.Split(spec, ",") {
				if !knownToken(v, strings.TrimLeft(t, "+-")) {
					bad = append(bad, a)
				}
			}
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("%w: trtexec %s does not accept %s", ErrUnsupportedSetting, v.Short(), strings.Join(bad, " "))
	}
	return nil
}

func knownToken(v version.Version, token string) bool {
	for _, t := range tacticTokens {
		if t.token == token {
			_, ok := acceptsTactic(v, t.source)
			return ok
		}
	}
	return false
}
