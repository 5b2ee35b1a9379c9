#!/usr/bin/env bash
# Every check that needs a GPU, in one command, because a borrowed GPU machine's time is short:
#
#   bash benchmarks/gpu_suite.sh OUT_DIR [BUDGET_S] [extra gpu_throughput.py args...]
#
# 1. the CUDA tests (GPU vs CPU masks, losses, keyed noise, Sinkhorn; the trainer on the device
#    in both memory layouts);
# 2. benchmarks/sinkhorn_speed.py on the device: SIGMA's Sinkhorn, old vs new, at batch 408;
# 3. benchmarks/gpu_throughput.py (rows skipped after BUDGET_S seconds, default 300), with
#    profiles of vssl's eager VideoMAE and SIGMA steps and its compiled VideoMAE step;
# 4. a short VideoMAE training run on the device through the CLI, eager and torch.compile'd.
# Ten files land in OUT_DIR (tar it where only a few files can come back). The most wanted
# numbers come first: a run cut off by its time limit keeps them. Each step has
# its own time limit; a failing step is recorded and the next one still runs.
set -u
out=${1:?usage: gpu_suite.sh OUT_DIR [BUDGET_S] [gpu_throughput.py args...]}
budget=${2:-300}
shift $(($# < 2 ? $# : 2))
mkdir -p "$out"
python=${PYTHON:-python3}
start=$SECONDS
stamp() { echo "[gpu_suite $((SECONDS - start)) s] $*"; }

nvidia-smi >"$out/nvidia-smi.txt" 2>&1 || echo "no nvidia-smi" >"$out/nvidia-smi.txt"

stamp "CUDA tests"
timeout 180 "$python" -m pytest -q -p no:cacheprovider -k "cuda or gpu" \
    tests/core/test_data.py tests/core/test_trainer.py tests/plugins/sigma/test_sinkhorn_loss.py \
    tests/plugins/sigma/test_sigma.py tests/plugins/videomae/test_videomae.py \
    >"$out/pytest_cuda.txt" 2>&1
stamp "CUDA tests exit $? ($(tail -n 1 "$out/pytest_cuda.txt"))"

stamp "SIGMA's Sinkhorn at the paper size, before vs now"
timeout 150 "$python" benchmarks/sinkhorn_speed.py --device cuda --tokens 574464 --rounds 5 \
    --json "$out/sinkhorn_speed.json" >"$out/sinkhorn_speed.txt" 2>&1
stamp "sinkhorn exit $? ($(tail -n 1 "$out/sinkhorn_speed.txt"))"

stamp "throughput"
timeout $((budget + 300)) "$python" benchmarks/gpu_throughput.py \
    --json "$out/gpu_throughput.json" --budget-s "$budget" \
    --profile videomae_vit_b sigma_mlp_vit_b --profile-compiled videomae_vit_b "$@" 2>&1 |
    tee "$out/gpu_throughput.txt"
stamp "throughput done"

stamp "training on the device, eager then compiled"
for compile in false true; do
    timeout 240 "$python" -m vssl_core.cli train recipes/videomae.yaml train.max_steps=40 \
        train.compile=$compile run.name=gpu_suite_compile_$compile \
        run.output_root="${TMPDIR:-/tmp}/vssl_gpu_suite_runs" log.progress_bar=false
    echo "exit status $? (compile=$compile)"
done >"$out/train.txt" 2>&1
stamp "training done: $(grep -c '^exit status 0' "$out/train.txt") of 2 runs exited 0"
