#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need (Debian
# packages, staticcheck), then checks formatting, vets, lints and runs every
# test with the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."

# Outside oracles the tests compare vdisk against.
packages=(dosfstools mtools fdisk libnbd-bin python3-libnbd qemu-utils fio nbdkit graphviz jq)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "== installing ${missing[*]}"
	SUDO=""
	[ "$(id -u)" -ne 0 ] && SUDO="sudo"
	$SUDO apt-get update -q >/dev/null
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

GOBIN="$(go env GOPATH)/bin"
if [ ! -x "$GOBIN/staticcheck" ]; then
	echo "== installing staticcheck"
	go install honnef.co/go/tools/cmd/staticcheck@latest
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== staticcheck"
"$GOBIN/staticcheck" ./...

echo "== go test -race"
go test -race -timeout 20m "$@" ./...
