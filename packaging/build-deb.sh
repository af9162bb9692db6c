#!/bin/bash
# build-deb.sh builds trtd_<version>_<arch>.deb for each architecture in
# ARCHES with a pinned nfpm. Run from anywhere; `make deb` calls it.
#
#   ARCHES       architectures (GOARCH = Debian arch names here): "amd64 arm64"
#   VERSION      version compiled into the binaries: git describe, else 0.1.0
#   DEB_VERSION  package version: derived from VERSION (Debian syntax)
#   OUT          output directory: build/deb
#   TRT_HEADERS  TensorRT public headers (<release>/include and cudastub/) the
#                cgo workers are compiled against (required; CI passes
#                ../shared/trt-headers). TRTD_WORKER_ABIS picks the ABIs: "8 10 11".
set -euo pipefail

NFPM_VERSION=v2.45.2
NFPM_PKG=github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

die() { echo "build-deb: $*" >&2; exit 1; }

ARCHES=${ARCHES:-amd64 arm64}
OUT=${OUT:-build/deb}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo 0.1.0)}
DEB_MAINTAINER=$(sed -n "s/^maintainer: //p" packaging/nfpm.yaml)

# Debian version from git describe: v1.2.3 -> 1.2.3; v1.2.3-4-gabc -> 1.2.3+4.gabc;
# no tag (a bare hash) -> 0.1.0~<commits>.g<hash>; -dirty -> +dirty / .dirty.
deb_version() {
	local v=${1#v} dirty=""
	if [[ $v == *-dirty ]]; then dirty=1; v=${v%-dirty}; fi
	if [[ $v =~ ^[0-9]+(\.[0-9]+)+ ]]; then # from a tag (a bare hash has no dots)
		if [[ $v =~ ^(.*)-([0-9]+)-g([0-9a-f]+)$ ]]; then
			v="${BASH_REMATCH[1]}+${BASH_REMATCH[2]}.g${BASH_REMATCH[3]}"
		fi
		v=${v//-/.}
		[[ -n $dirty ]] && { [[ $v == *+* ]] && v="$v.dirty" || v="$v+dirty"; }
	else
		local n
		n=$(git rev-list --count HEAD 2>/dev/null || echo 0)
		v="0.1.0~$n.g$v"
		[[ -n $dirty ]] && v="$v.dirty"
	fi
	echo "$v"
}
DEB_VERSION=${DEB_VERSION:-$(deb_version "$VERSION")}
[[ $DEB_VERSION =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || die "bad Debian version '$DEB_VERSION' (from VERSION=$VERSION)"

# Reproducible timestamps: the commit's time.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

for d in cmd/trtd cmd/trtd-worker; do
	compgen -G "$d/*.go" >/dev/null || die "$d has no Go files yet: the package ships /usr/bin/trtd and /usr/lib/trtd/trtd-worker, build them first"
done
[[ -f config.example.toml ]] || die "config.example.toml is missing: it is shipped as /etc/trtd/config.toml"

command -v go >/dev/null || die "go is not on PATH"
TRTD_WORKER_ABIS=${TRTD_WORKER_ABIS:-8 10 11}
[[ -n ${TRT_HEADERS:-} ]] || die "TRT_HEADERS is not set: give the directory of TensorRT public headers the cgo workers are compiled against (make deb TRT_HEADERS=dir; it holds 8.0/include, 10.0/include, 11.1/include and cudastub/)"
[[ -d $TRT_HEADERS ]] || die "TRT_HEADERS=$TRT_HEADERS is not a directory"
TRT_HEADERS=$(cd "$TRT_HEADERS" && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
: >"$OUT/debs.txt"  # what this run built, for lint-deb.sh and the e2e

for arch in $ARCHES; do
	case $arch in amd64|arm64) ;; *) die "unsupported architecture '$arch' (amd64, arm64)";; esac
	stage="$OUT/stage-$arch"  # absolute: nfpm runs there
	rm -rf "$stage"
	mkdir -p "$stage/doc"
	ldflags="-s -w -buildid= -X github.com/trtd/trtd/daemon.Version=$VERSION"
	echo "build-deb: $arch: go build (CGO_ENABLED=0, version $VERSION)"
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -ldflags "$ldflags" -o "$stage/trtd" ./cmd/trtd
	# The pure-Go worker drives trtexec: the fallback when no cgo worker
	# matches the installed TensorRT or its probe fails.
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -ldflags "$ldflags" -o "$stage/trtd-worker" ./cmd/trtd-worker
	# One cgo worker per TensorRT ABI; the daemon runs the one matching the
	# installed libnvinfer.so.N (daemon/workers).
	for abi in $TRTD_WORKER_ABIS; do
		VERSION=$VERSION "$here/build-worker.sh" "$arch" "$abi" "$TRT_HEADERS" "$stage/trtd-worker-trt$abi"
	done

	cp systemd/trtd.service "$stage/trtd.service"
	cp config.example.toml "$stage/config.toml"
	cp packaging/lintian-overrides "$stage/lintian-overrides"
	cp -r packaging/scripts "$stage/scripts"
	cp packaging/copyright "$stage/doc/copyright"
	gzip -9nc packaging/trtd.8 >"$stage/trtd.8.gz"
	for f in README.md docs/PACKAGING.md; do
		[[ -f $f ]] && gzip -9nc "$f" >"$stage/doc/$(basename "$f").gz"
	done
	{
		echo "trtd ($DEB_VERSION) unstable; urgency=medium"
		echo
		echo "  * Built from $(git rev-parse --short HEAD 2>/dev/null || echo 'an unknown commit') ($VERSION)."
		echo
		echo " -- $DEB_MAINTAINER  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
	} | gzip -9n >"$stage/doc/changelog.gz"
	# nfpm's contents list: the cgo workers built above.
	for abi in $TRTD_WORKER_ABIS; do
		printf '  - src: ./trtd-worker-trt%s\n    dst: /usr/lib/trtd/trtd-worker-trt%s\n    file_info: {mode: 0755}\n' "$abi" "$abi"
	done >"$stage/workers.yaml"
	sed -e "/^contents:/r $stage/workers.yaml" packaging/nfpm.yaml >"$stage/nfpm.yaml"
	touch -d "@$SOURCE_DATE_EPOCH" "$stage"/* "$stage"/doc/*

	echo "build-deb: $arch: nfpm $NFPM_VERSION"
	rm -f "$OUT/trtd_${DEB_VERSION}_$arch.deb"
	(cd "$stage" && env -u GOARCH -u GOOS -u CGO_ENABLED GOFLAGS= \
		DEB_ARCH="$arch" DEB_VERSION="$DEB_VERSION" \
		go run "$NFPM_PKG" package --packager deb --config "$stage/nfpm.yaml" \
		--target "$OUT/trtd_${DEB_VERSION}_$arch.deb")
	echo "$OUT/trtd_${DEB_VERSION}_$arch.deb" >>"$OUT/debs.txt"
	echo "build-deb: $OUT/trtd_${DEB_VERSION}_$arch.deb"
done
