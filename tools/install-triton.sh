#!/usr/bin/env bash
# Installs a real Triton server (2.51, python backend only) and perf_analyzer for `navigator serve-check`
# and `--tune-serving` on a machine without NVIDIA's container, from two PyPI wheels:
#   - nvidia-pytriton 0.7.0 carries tritonserver, the python backend and its stubs per Python version;
#   - tritonclient 2.51.0 (manylinux) carries the perf_analyzer binary (later releases ship it elsewhere).
# perf_analyzer links libb64.so.0d and libcudart.so.12 (it runs without a GPU); the pytriton wheel bundles
# both under hashed names, so links with the plain names go in lib/.
# Usage: tools/install-triton.sh [DEST]   (DEST defaults to ~/.cache/navigator/triton)
#        WHEELS=DIR tools/install-triton.sh [DEST]   offline, from the two wheels in DIR
# Run it with the Python environment navigator runs in active: the python backend executes model.py in the
# interpreter whose libpython is found first, and that must be the one with navigator's runtimes installed.
# Afterwards DEST/bin holds `tritonserver` and `perf_analyzer` wrappers; navigator finds them there
# (or through NAVIGATOR_TRITONSERVER / NAVIGATOR_PERF_ANALYZER, or on PATH).
set -euo pipefail
dest=${1:-${HOME}/.cache/navigator/triton}
python=${PYTHON:-python3}
pyver=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
libdir=$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR") or "")')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -n "${WHEELS:-}" ]; then
  cp "$WHEELS"/nvidia_pytriton-0.7.0-*.whl "$WHEELS"/tritonclient-2.51.0-*manylinux*.whl "$work"/
else
  "$python" -m pip download --quiet --no-deps --dest "$work" nvidia-pytriton==0.7.0
  "$python" -m pip download --quiet --no-deps --dest "$work" --only-binary=:all: \
    --platform manylinux1_x86_64 tritonclient==2.51.0
fi
stage="$dest.tmp.$$"
rm -rf "$stage" && mkdir -p "$stage/bin" "$stage/lib"
"$python" -m zipfile -e "$work"/nvidia_pytriton-0.7.0-*.whl "$stage/pytriton-wheel"
"$python" -m zipfile -e "$work"/tritonclient-2.51.0-*.whl "$stage/client-wheel"
server="$stage/pytriton-wheel/pytriton/tritonserver"
libs="$stage/pytriton-wheel/nvidia_pytriton.libs"
stub="$server/python_backend_stubs/$pyver/triton_python_backend_stub"
[ -f "$stub" ] || { echo "install-triton: no python backend stub for Python $pyver in the wheel" >&2; exit 2; }
cp "$stub" "$server/backends/python/"
mv "$stage/client-wheel/tritonclient-2.51.0.data/data/bin/perf_analyzer" "$stage/bin/perf_analyzer.bin"
rm -rf "$stage/client-wheel"
chmod +x "$server/bin/tritonserver" "$server/backends/python/triton_python_backend_stub" "$stage/bin/perf_analyzer.bin"
ln -s "../pytriton-wheel/nvidia_pytriton.libs/$(basename "$libs"/libb64-*.so.0d)" "$stage/lib/libb64.so.0d"
ln -s "../pytriton-wheel/nvidia_pytriton.libs/$(basename "$libs"/libcudart-*.so.12*)" "$stage/lib/libcudart.so.12"
cat > "$stage/bin/tritonserver" <<WRAP
#!/usr/bin/env bash
# tritonserver from nvidia-pytriton 0.7.0; the python backend runs in the Python of $libdir
here=\$(cd "\$(dirname "\$0")/.." && pwd)
export LD_LIBRARY_PATH="$libdir:\$here/pytriton-wheel/nvidia_pytriton.libs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
exec "\$here/pytriton-wheel/pytriton/tritonserver/bin/tritonserver" "\$@"
WRAP
cat > "$stage/bin/perf_analyzer" <<'WRAP'
#!/usr/bin/env bash
# perf_analyzer from tritonclient 2.51.0
here=$(cd "$(dirname "$0")/.." && pwd)
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$here/bin/perf_analyzer.bin" "$@"
WRAP
chmod +x "$stage/bin/tritonserver" "$stage/bin/perf_analyzer"
# the backends directory is what --backend-directory must name
ln -s pytriton-wheel/pytriton/tritonserver/backends "$stage/backends"
"$stage/bin/perf_analyzer" --version >/dev/null 2>&1 || "$stage/bin/perf_analyzer" --help >/dev/null 2>&1 || {
  echo "install-triton: perf_analyzer does not start:" >&2; "$stage/bin/perf_analyzer" --help 2>&1 | head -3 >&2; exit 1; }
rm -rf "$dest" && mkdir -p "$(dirname "$dest")" && mv "$stage" "$dest"
echo "install-triton: tritonserver and perf_analyzer in $dest/bin"
