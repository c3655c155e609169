#!/usr/bin/env bash
# The GPU check: on a CUDA machine,
#   1. the fast paths this machine has (shardstream info --system);
#   2. the CUDA tests (the tests that skip without CUDA, and the device refusals), which must pass
#      (among them: resize="device"'s raw JPEG planes upsampled and converted on CUDA give the
#      CPU's RGB bytes);
#   3. benchmarks/bench_dino.py --device-only --device cuda (DinoPreset's device step alone);
#   4. ViT-S/16 DINO training (2 x 224 + 8 x 96 crops, batch 64, 30 timed steps) fed by
#      shardstream's loader in its three modes (resize in the workers, exact; resize on the
#      device; decode with nvJPEG and resize on the device) and by torchvision's (ImageFolder +
#      DataAugmentationDINO), with images/s and input stall % for each
#      (benchmarks/dino_loaders.py).
# Not yet timed on a GPU with the four loaders (the training step may take up to 540 s).
#
# Usage: bash benchmarks/gpu_check.sh             (run from the repository root, on a GPU machine)
#        (the dry run trains with the CPU modes only: decode="device" needs CUDA)
#        bash benchmarks/gpu_check.sh --dry-run   (tiny sizes on the CPU: every step in miniature,
#                                                  under a minute; the test suite runs it)
# Work files go to $GPU_CHECK_DIR (default bench-data/gpu-check). Each step has a time limit;
# the script stops at the first failing step and exits non-zero.
set -euo pipefail

dry_run=0
case "${1:-}" in
--dry-run) dry_run=1 ;;
"") ;;
*)
    echo "usage: bash benchmarks/gpu_check.sh [--dry-run]" >&2
    exit 2
    ;;
esac

cd "$(dirname "$0")/.."
work="${GPU_CHECK_DIR:-bench-data/gpu-check}"
mkdir -p "$work"
python="${PYTHON:-python}"
started=$SECONDS

step() { # step NAME LIMIT_SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    local begun=$SECONDS
    echo "== gpu_check: $name"
    if ! timeout "$limit" "$@"; then
        echo "gpu_check: FAILED: $name (after $((SECONDS - begun)) s)"
        exit 1
    fi
    echo "gpu_check: ok: $name ($((SECONDS - begun)) s)"
}

cuda_tests=(
    tests/compat/helios/test_rng.py::test_cuda_generators_are_seeded_saved_and_restored
    tests/vision/test_photometric.py::test_cuda_matches_cpu
    tests/test_fastpaths.py::test_cuda_preset_builds_and_its_batches_land_on_the_gpu
    tests/vision/test_device_resize.py::test_cuda_device_modes_match_the_cpu_device_step
)

if [ "$dry_run" = 1 ]; then
    echo "gpu_check: dry run (CPU, tiny sizes)"
    step "fast paths" 60 "$python" -m shardstream info --system
    # On the CPU the CUDA tests skip: this checks that they are collected and run.
    step "cuda tests" 120 "$python" -m pytest -q -rs -p no:cacheprovider "${cuda_tests[@]}"
    step "bench_dino device-only" 120 "$python" benchmarks/bench_dino.py --device-only \
        --device cpu --images 12 --per-run 8 --batch 4 --repeats 1 \
        --images-dir "$work/convert" --workdir "$work/dino"
    step "dino training, both loaders" 180 "$python" benchmarks/dino_loaders.py --tiny \
        --device cpu --steps 2 --warmup 1 --images 40 --workers 1 --workdir "$work" \
        --loaders shardstream,shardstream-resize,torchvision
else
    "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || {
        echo "gpu_check: FAILED: torch sees no CUDA GPU (use --dry-run on a CPU machine)"
        exit 1
    }
    step "fast paths" 60 "$python" -m shardstream info --system
    # -rs lists skips; on a GPU machine the CUDA tests must run, not skip.
    step "cuda tests" 150 bash -c "set -o pipefail; \"$python\" -m pytest -q -rs -p no:cacheprovider \
        ${cuda_tests[*]} | tee \"$work/pytest.log\"; ! grep -q 'SKIPPED.*needs a CUDA device' \"$work/pytest.log\""
    step "bench_dino device-only" 120 "$python" benchmarks/bench_dino.py --device-only \
        --device cuda --quick --images-dir "$work/convert" --workdir "$work/dino"
    step "dino training, both loaders" 540 "$python" benchmarks/dino_loaders.py --device cuda \
        --steps 30 --warmup 5 --images 2000 --workdir "$work"
fi
echo "gpu_check: done in $((SECONDS - started)) s"
