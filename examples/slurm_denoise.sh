#!/usr/bin/env bash
# Denoise a folder of photos or renders on a Slurm array: each task takes every N-th file, the outputs land
# where one run over the whole folder would put them, and the last step merges the tasks' JSON reports.
#
#   sbatch --array=0-15 examples/slurm_denoise.sh /data/shoot /data/clean
#   python -c 'import json, sys; from mdn.io.batch import merge_reports; \
#     print(json.dumps(merge_reports(json.load(open(p)) for p in sys.argv[1:]), indent=2))' /data/clean/.reports/*.json
#
#SBATCH --job-name=mdn-denoise
#SBATCH --cpus-per-task=8
#SBATCH --mem=8G
#SBATCH --time=02:00:00
set -euo pipefail
input=${1:?usage: slurm_denoise.sh INPUT_DIR OUTPUT_DIR}
output=${2:?usage: slurm_denoise.sh INPUT_DIR OUTPUT_DIR}
mkdir -p "$output/.reports"
mdn denoise "$input" --recursive -o "$output" --skip-existing --threads "${SLURM_CPUS_PER_TASK:-0}" \
  --shard "${SLURM_ARRAY_TASK_ID:-0}/${SLURM_ARRAY_TASK_COUNT:-1}" \
  --json "$output/.reports/task-${SLURM_ARRAY_TASK_ID:-0}.json"
