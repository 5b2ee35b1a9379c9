#!/usr/bin/env bash
# Every measurement that needs a GPU, in one command, because a lent GPU machine's time is short
# (issue 19: the fair race, training from video files, the compiled step's missing time):
#
#   bash benchmarks/gpu_suite.sh WORK_DIR [TARBALL] [DEADLINE_S]
#
# Run from the checkout's root with .gpu_deps/ beside it (benchmarks/gpu_deps.sh, carried to
# the machine): its wheels and ffcv are installed into /tmp/site first. The results land in
# WORK_DIR, named for the GPU and the day (e.g. gpu_throughput_h200_2026-12-07.json), ready to
# copy into benchmarks/results/; after every step WORK_DIR is packed into TARBALL (one file to
# bring back, also when a later step runs out of time). Every step has its own time limit, cut
# so that the whole suite ends by DEADLINE_S (default 590) seconds; a failing step is logged
# and the next still runs. The most wanted numbers come first.
#
# 0. (in the background, niced, from the start) the end-to-end data: `vssl data synth` of
#    2,016 Kinetics-like videos (10 s, 25 fps, 256x256) and `vssl data pack` of them;
# 1. the CUDA tests of what this suite measures (device feed, uint8 input, layouts);
# 2. gpu_throughput.py, VideoMAE ViT-B: vssl and transformers eager, vssl and transformers
#    compiled, vssl compiled with uint8_input; then the compiled step's profile with its
#    timeline (busy/idle time, idle gaps by cause, host phases, allocator, host syncs);
# 3. e2e_throughput.py: the trainer fed from the device, from ffcv, from PyAV with 4 repeats,
#    and each loader alone (clips per core-second).
# GPU_SUITE_TINY=1 runs every step at the scripts' --tiny sizes: a dry run of the suite on a CPU.
set -u
work=${1:?usage: gpu_suite.sh WORK_DIR [TARBALL] [DEADLINE_S]}
tarball=${2:-}
deadline=${3:-590}
mkdir -p "$work"
work=$(cd "$work" && pwd)
python=${PYTHON:-python3}
tiny=${GPU_SUITE_TINY:+--tiny}
export PYTHONUNBUFFERED=1
start=$SECONDS
log="$work/gpu_suite.log"
stamp() { echo "[gpu_suite $((SECONDS - start)) s] $*" | tee -a "$log"; }
pack() { [ -z "$tarball" ] || tar -czf "$tarball" -C "$work" . 2>/dev/null; }
# the time limit of a step: its own, or less so that RESERVE seconds stay for the later steps
limit() {
    local left=$((deadline - (SECONDS - start) - $2))
    [ "$left" -lt "$1" ] && echo $((left > 10 ? left : 10)) || echo "$1"
}

if [ -d .gpu_deps ]; then
    stamp "installing .gpu_deps into /tmp/site"
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .gpu_deps/wheels/*.whl >>"$log" 2>&1 &&
        tar -xJf .gpu_deps/ffcv.tar.xz -C /tmp/site ||
        stamp "installing .gpu_deps failed (see above)"
    # this checkout's code first; /tmp/site gives the packages and vssl's entry points
    export PYTHONPATH=$PWD:$PWD/plugins:/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    export LD_LIBRARY_PATH=/tmp/site/ffcv_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
nvidia-smi >>"$log" 2>&1 || echo "no nvidia-smi" >>"$log"
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 |
    grep -o -i -E 'h100|h200|a100|b200|l40s' | head -n 1 | tr 'A-Z' 'a-z')
tag=${gpu:-gpu}_$(date +%F)
cpus=$(nproc)
"$python" -c "import torch, av, fvcore, vssl_core; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" >>"$log" 2>&1 ||
    stamp "vssl or its dependencies do not import (see the log); carry .gpu_deps"
"$python" -c "import ffcv" >>"$log" 2>&1 || stamp "ffcv does not import: the ffcv rows will be skipped"

data=${TMPDIR:-/tmp}/vssl_e2e_data
stamp "e2e data in the background, niced"
nice -n 10 timeout 420 "$python" benchmarks/e2e_throughput.py --prepare-only --data "$data" \
    --prep-workers $((cpus > 2 ? cpus - 2 : 1)) $tiny >"$work/e2e_prepare.txt" 2>&1 &
prep=$!

stamp "CUDA tests"
timeout "$(limit 60 510)" "$python" -m pytest -q -p no:cacheprovider -k "cuda" \
    tests/core/test_device_feed.py tests/plugins/videomae/test_videomae.py \
    tests/core/test_trainer.py >"$work/pytest_cuda.txt" 2>&1
stamp "CUDA tests exit $? ($(tail -n 1 "$work/pytest_cuda.txt"))"
pack

stamp "throughput: VideoMAE ViT-B vs transformers, eager and compiled; the compiled step's profile"
timeout "$(limit 330 180)" "$python" benchmarks/gpu_throughput.py --rows videomae_vit_b \
    --labels default compile "compile, uint8_input" --budget-s 210 \
    --profile-compiled videomae_vit_b --json "$work/gpu_throughput_$tag.json" $tiny \
    >"$work/gpu_throughput_$tag.txt" 2>&1
stamp "throughput exit $? ($(grep -c '^\[' "$work/gpu_throughput_$tag.txt") rows printed)"
pack

stamp "waiting for the e2e data"
wait "$prep"
stamp "e2e data: exit $? ($(tail -n 1 "$work/e2e_prepare.txt" | cut -c1-200))"
stamp "end to end: device, ffcv, PyAV x4 rows and the loaders alone"
timeout "$(limit 300 0)" "$python" benchmarks/e2e_throughput.py --data "$data" \
    --workers $((cpus > 2 ? cpus - 2 : 1)) --warmup 3 --steps 8 --profile-steps 2 --budget-s 170 \
    --json "$work/e2e_throughput_$tag.json" $tiny >"$work/e2e_throughput_$tag.txt" 2>&1
stamp "end to end exit $? ($(grep -c '^\[' "$work/e2e_throughput_$tag.txt") rows printed)"
pack
stamp "done; results in $work${tarball:+ and $tarball}"
