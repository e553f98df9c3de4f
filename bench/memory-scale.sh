#!/bin/sh
# Memory and time of LoRA fine-tuning through bin/pet on random-weight Hugging Face GPT-2 checkpoints.
#
#   ./mvnw -B -q -o package -DskipTests && bench/memory-scale.sh gpt2 [gpt2-medium gpt2-large gpt2-xl]
#
# For each shape: writes the checkpoint once under $PET_BENCH_DIR (default /tmp/pet-bench; gigabytes, never commit
# them), runs `bin/pet finetune` for $STEPS steps (LoRA r=8 on c_attn, batch 4, sequence 128, AdamW) under
# /usr/bin/time, and prints peak RSS, wall time, seconds from launch to "training ...", to the end of step 1 and of
# the last step, and the steady step time (median of steps 3..). Extra `runner_config`/engine settings can be passed
# as YAML lines in $EXTRA (e.g. EXTRA='  recompute: true').
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
pet="$here/distribution/target/pet"
dir=${PET_BENCH_DIR:-/tmp/pet-bench}
steps=${STEPS:-6}
mkdir -p "$dir"
# The shipped sample text repeated: enough 129-token windows for a few batches of 4.
if [ ! -f "$dir/corpus.txt" ]; then
  for i in $(seq 40); do cat "$pet/data/lighthouse.txt"; done > "$dir/corpus.txt"
fi
for shape in "$@"; do
  ckpt="$dir/$shape"
  if [ ! -f "$ckpt/config.json" ]; then
    python3 "$here/bench/make_gpt2_checkpoint.py" "$shape" "$ckpt"
  fi
  run="$dir/run-$shape"
  rm -rf "$run" && mkdir -p "$run"
  cat > "$run/run.yaml" <<YAML
seed: 42
run_mode: finetune
output_dir: $run/out
resume_training: false
model:
  model_config:
    type: GPT2Config
    checkpoint_name_or_path: $ckpt
    seq_length: 128
    pet_config:
      pet_type: lora
      lora_rank: 8
      lora_alpha: 16
      lora_dropout: 0.0
      target_modules: '.*c_attn'
  arch:
    type: GPT2LMHeadModel
runner_config:
  epochs: 1000
  batch_size: 4
  max_steps: $steps
${EXTRA:-}
optimizer:
  type: AdamW
lr_schedule:
  type: constant
  learning_rate: 1.0e-4
train_dataset:
  data_loader:
    type: text
    dataset_dir: $dir/corpus.txt
    shuffle: false
callbacks:
  checkpoint_steps: 100000
  log_steps: 1
device: cpu
YAML
  start=$(date +%s.%N)
  # Samples the JVM's anonymous and file-backed resident memory every 0.2 s (peak RSS alone cannot tell ORT's and
  # the heap's copies from mapped checkpoint pages, which the kernel can reclaim).
  python3 "$here/bench/rss_sampler.py" "$run/run.yaml" "$run/rss.txt" &
  sampler=$!
  /usr/bin/time -f "%M %e" -o "$run/time.txt" "$pet/bin/pet" finetune "$run/run.yaml" 2>&1 \
    | while IFS= read -r line; do printf '%s %s\n' "$(date +%s.%N)" "$line"; done > "$run/log.txt" || true
  wait "$sampler" || true
  python3 - "$run" "$start" "$shape" <<'PY'
import json, os, statistics, sys
run, start, shape = sys.argv[1], float(sys.argv[2]), sys.argv[3]
rss_kb, wall = open(os.path.join(run, "time.txt")).read().split()[-2:]
lines = [l.split(" ", 1) for l in open(os.path.join(run, "log.txt")).read().splitlines() if " " in l]
def first(prefix):
    return next((float(t) - start for t, l in lines if l.startswith(prefix)), float("nan"))
steps = [float(t) - start for t, l in lines if l.startswith("step ")]
dt = [b - a for a, b in zip(steps, steps[1:])]
steady = statistics.median(dt[1:]) if len(dt) > 1 else float("nan")
print(f"{shape}: peak RSS {int(rss_kb) / 1024 / 1024:.2f} GiB, wall {float(wall):.1f} s, 'training' at "
      f"{first('training '):.1f} s, step 1 done at {steps[0] if steps else float('nan'):.1f} s, "
      f"step 2 took {dt[0] if dt else float('nan'):.2f} s, steady step {steady:.2f} s "
      f"({512 / steady:.0f} tokens/s), {len(steps)} steps")
samples = [l.split() for l in open(os.path.join(run, "rss.txt")).read().splitlines()]
if samples:
    gib = lambda kb: int(kb) / 1024 / 1024
    def at(t):  # the last sample at or before launch + t seconds
        before = [s for s in samples if float(s[0]) - start <= t]
        return f"anon {gib(before[-1][1]):.2f} + file {gib(before[-1][2]):.2f}" if before else "-"
    print(f"  peak RssAnon {max(gib(s[1]) for s in samples):.2f} GiB, peak RssFile "
          f"{max(gib(s[2]) for s in samples):.2f} GiB; at 'training': {at(first('training '))}; "
          f"after step 1: {at(steps[0]) if steps else '-'}; after step 2: "
          f"{at(steps[1]) if len(steps) > 1 else '-'}; at the end: {at(1e9)} GiB")
PY
done
