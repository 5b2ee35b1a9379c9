#!/usr/bin/env bash
# Prepare, on this (CPU) machine with PyPI, what a lent GPU machine lacks to run gpu_suite.sh.
# Its image has Python 3.12 with PyTorch, transformers, numba, OpenCV and pytest, and can fetch
# nothing; vssl also needs PyAV, fvcore, omegaconf and (for the ffcv rows) ffcv, whose C library
# links OpenCV and libjpeg-turbo from the system. Run it from a checkout whose .venv has the
# `ffcv` extra (`make setup EXTRAS=dev,ffcv`, after the apt packages of .ci/run):
#
#   bash benchmarks/gpu_deps.sh            # writes .gpu_deps/ (~45 MB; in .gitignore)
#
# then carry `.gpu_deps` to the GPU run; gpu_suite.sh installs it into /tmp/site first:
#   wheels/      PyAV (abi3, FFmpeg inside), vssl built from this checkout (its plugins'
#                entry points), the pure-Python packages vssl and ffcv import
#   ffcv.tar.xz  ffcv from this venv (its C library loads with any CPython 3: a copy is named
#                for 3.12) and the shared libraries it links that the image lacks
set -euo pipefail
out=${1:-.gpu_deps}
py=${PYTHON:-.venv/bin/python}
"$py" -c "import ffcv, av, fvcore" || {
    echo "gpu_deps: $py lacks ffcv, av or fvcore; make setup EXTRAS=dev,ffcv first" >&2
    exit 2
}
rm -rf "$out"
mkdir -p "$out/wheels"
version() { "$py" -c "from importlib.metadata import version; print(version('$1'))"; }

"$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$out/wheels" "av==$(version av)"
pure=()
for name in fvcore iopath yacs omegaconf termcolor fastargs \
    terminaltables assertpy pytorch-pfn-extras; do
    pure+=("$name==$(version "$name")")
done
"$py" -m pip wheel -q --no-deps -w "$out/wheels" "${pure[@]}"
"$py" -m pip wheel -q --no-deps --no-build-isolation -w "$out/wheels" .

stage=$(mktemp -d)
site=$("$py" -c "import ffcv, os; print(os.path.dirname(os.path.dirname(ffcv.__file__)))")
cp -r "$site/ffcv" "$stage/ffcv"
rm -rf "$stage/ffcv/benchmarks" "$stage"/ffcv/**/__pycache__ "$stage/ffcv/__pycache__"
lib=$(ls "$stage"/ffcv/_libffcv.cpython-*.so | head -n 1)
cp "$lib" "$stage/ffcv/_libffcv.cpython-312-x86_64-linux-gnu.so" 2>/dev/null || true
mkdir -p "$stage/ffcv_libs"
# everything it links except the C/C++ runtime and zlib, which every image has
ldd "$lib" | awk '/=> \// {print $1, $3}' |
    grep -v -E '^(libc|libm|libstdc\+\+|libgcc_s|libz|libpthread|libdl|librt|ld-linux)[.-]' |
    while read -r soname path; do cp -L "$path" "$stage/ffcv_libs/$soname"; done
tar -cJf "$out/ffcv.tar.xz" -C "$stage" ffcv ffcv_libs
rm -rf "$stage"
du -sh "$out"/wheels/* "$out/ffcv.tar.xz"
echo "gpu_deps: $(du -sh "$out" | cut -f1) in $out; carry it: run(command=..., carry=[\"$out\"])"
