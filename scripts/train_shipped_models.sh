#!/usr/bin/env bash
# The exact commands that produced the shipped models:
#   models/buildings-unet/1.2.0 (fitted on one H100: `./train_shipped_models.sh buildings-gpu`),
#   models/buildings-unet/1.1.5 (1.1.0's weights re-tuned twice, then settings switched on;
#   1.1.4, 1.1.3, 1.1.2, 1.1.1 and 1.0.0 kept) and
#   models/vehicles-centernet/1.0.0
#
# Training data: central Helsinki rendered by `baseline synth` with seeds and sun
# positions the demo (seed 7, sun 38 deg / 105 deg) never uses; seeds 106 and 107
# are held out and only scored. CPU only, niced, on a shared 2-core machine: each
# model gets a wall-time budget (--max-minutes) and the one-cycle schedule anneals
# to fit it, so the iteration count recorded in each card depends on the machine.
#
# Usage: scripts/train_shipped_models.sh [all|buildings|vehicles|buildings-gpu]
set -euo pipefail
cd "$(dirname "$0")/.."
WHAT=${1:-all}

BASELINE=${BASELINE:-.venv/bin/baseline}
PY=${PY:-.venv/bin/python}
DATA=${DATA:-.cache/train}
MINUTES=${MINUTES:-20}
B_MINUTES=${B_MINUTES:-20}

# copy_with_postprocess FROM TO KEY JSON_VALUE [KEY JSON_VALUE ...]: a new version folder with
# FROM's weights and card, those post-processing settings set (then --rescore re-tunes or only
# re-scores it)
copy_with_postprocess() {
  local from=$1 to=$2
  shift 2
  rm -rf "models/buildings-unet/$to" && cp -r "models/buildings-unet/$from" "models/buildings-unet/$to"
  set_postprocess "$to" "$@"
}

# set_postprocess VERSION KEY JSON_VALUE [KEY JSON_VALUE ...]: set those settings in VERSION's card, in place
set_postprocess() {
  local to=$1
  shift
  "$PY" -c 'import json, sys
path, pairs = sys.argv[1], sys.argv[2:]
card = json.load(open(path))
for key, value in zip(pairs[::2], pairs[1::2], strict=True):
    card["postprocess"][key] = json.loads(value)
json.dump(card, open(path, "w"), indent=2)' "models/buildings-unet/$to/card.json" "$@"
}

render() {  # seed, sun elevation, sun azimuth
  if [ ! -f "$DATA/s$1/vhr.json" ]; then
    nice -n 5 "$BASELINE" synth --city helsinki --out "$DATA/s$1" --seed "$1" --sun-elevation "$2" --sun-azimuth "$3"
  fi
}

render 101 30 140
render 102 45 200
render 103 60 160
render 104 35 230
render 105 55 125
render 106 40 110   # held out
render 107 62 235   # held out

TRAIN=("$DATA/s101" "$DATA/s102" "$DATA/s103" "$DATA/s104" "$DATA/s105")
VAL=("$DATA/s106" "$DATA/s107")

if [ "$WHAT" = all ] || [ "$WHAT" = buildings ]; then
# 1.1.0: a fixed 6,000 iterations, three times 1.0.0's, so the fit is the same
# on any machine (the 90-minute budget only guards against a very slow one); 3,385 s here.
# (--augment basic: the sensor augmentation came later; see the README for a fit with it)
nice -n 5 "$BASELINE" -v train buildings --data "${TRAIN[@]}" --val "${VAL[@]}" \
  --out models/buildings-unet/1.1.0 --epochs 60 --iters-per-epoch 100 --max-minutes 90 \
  --seed 0 --threads 2 --no-progress --augment basic
# 1.1.1: 1.1.0's weights, post-processing re-tuned once the tuning could also split
# seeds at stricter boundary thresholds (faint walls between terraced houses); deterministic.
rm -rf models/buildings-unet/1.1.1 && cp -r models/buildings-unet/1.1.0 models/buildings-unet/1.1.1
nice -n 5 "$BASELINE" -v train buildings --rescore --data "${TRAIN[@]}" --val "${VAL[@]}" \
  --out models/buildings-unet/1.1.1 --threads 2
# 1.1.2: the same weights; a darker part of a roof counts as a neighbour's shadow only
# where it is also bluer than the roof's sunlit part (skylight), and the rest of the post-processing
# re-tuned with that on; deterministic.
copy_with_postprocess 1.1.1 1.1.2 roof_shadow_min_blueness 1.3
nice -n 5 "$BASELINE" -v train buildings --rescore --data "${TRAIN[@]}" --val "${VAL[@]}" \
  --out models/buildings-unet/1.1.2 --threads 2
# 1.1.3 : 1.1.2 with shade_neighbours on (a measured building whose shadow ends on a
# neighbour's roof measures that roof), its other settings kept (not re-tuned: re-tuned with it on,
# the finer height split it chose made a 24.9 m building 0.5 m tall on a Helsinki 3D scene); re-scored.
copy_with_postprocess 1.1.2 1.1.3 shade_neighbours true
nice -n 5 "$BASELINE" -v train buildings --rescore --keep-postprocess --data "${TRAIN[@]}" --val "${VAL[@]}" \
  --out models/buildings-unet/1.1.3 --threads 2
# 1.1.4: 1.1.3 with wholly shaded roofs told apart (median blue/NIR at least 1.4x and
# brightness at most 0.7x the scene's typical roof; on training renders 101-105 these marked 90% of
# the roofs wholly in a neighbour's shadow and no roof wholly or mostly in sun): rays cross them and
# their own rays give only an upper bound; other settings kept; re-scored.
copy_with_postprocess 1.1.3 1.1.4 shaded_roof_blueness 1.4 shaded_roof_brightness 0.7
nice -n 5 "$BASELINE" -v train buildings --rescore --keep-postprocess --data "${TRAIN[@]}" --val "${VAL[@]}" \
  --out models/buildings-unet/1.1.4 --threads 2
# 1.1.5 (the default): 1.1.4 with shadow_through_roofs on (a ray that crosses a lower roof in shadow
# all the way and lands on shadowed ground beyond it measures its caster there, where the crossed
# building's height is known and the shadow outruns its own); other settings kept; re-scored.
copy_with_postprocess 1.1.4 1.1.5 shadow_through_roofs true
nice -n 5 "$BASELINE" -v train buildings --rescore --keep-postprocess --data "${TRAIN[@]}" --val "${VAL[@]}" \
  --out models/buildings-unet/1.1.5 --threads 2
# 1.0.0, kept for comparison (pin it with `detect: {buildings_version: "1.0.0"}` in a run config):
# a 20-minute budget, 2002 iterations, fitted before the post-processing tuning gained its last
# knobs, then re-tuned and re-scored without touching the weights (--rescore; deterministic).
# nice -n 5 "$BASELINE" -v train buildings --data "${TRAIN[@]}" --val "${VAL[@]}" \
#   --out models/buildings-unet/1.0.0 --epochs 100 --iters-per-epoch 100 --max-minutes "$B_MINUTES" \
#   --seed 0 --threads 2 --no-progress --augment basic
# nice -n 5 "$BASELINE" -v train buildings --rescore --data "${TRAIN[@]}" --val "${VAL[@]}" \
#   --out models/buildings-unet/1.0.0 --threads 2
fi

if [ "$WHAT" = buildings-gpu ]; then
# 1.2.0 (the default): 1.1.0's network, data and settings fitted from scratch on one NVIDIA H100 with
# 16 CPU cores, for a 6.5-minute budget (10,983 iterations, crops drawn in 12 processes, so not
# reproducible batch for batch); the post-processing tuned there with defaults, then as for 1.1.2
# (roof_shadow_min_blueness 1.3, re-tuned on this machine), then 1.1.5's hand-set settings
# (shade_neighbours, shaded roofs, shadow_through_roofs, and its seed splits, which the tuning
# here did not choose) kept and re-scored. The training renders were made on that machine: same
# seeds and suns, 473-475 buildings each as here, but 1,202-1,277 vehicles against 1,336-1,403
# here (its numpy 2.5 draws parked cars differently).
"$BASELINE" -v train buildings --data "${TRAIN[@]}" --out models/buildings-unet/1.2.0 \
  --epochs 1000 --iters-per-epoch 100 --max-minutes 6.5 --seed 0 --augment basic \
  --device cuda --sample-workers 12 --no-progress
set_postprocess 1.2.0 roof_shadow_min_blueness 1.3
nice -n 5 "$BASELINE" -v train buildings --rescore --data "${TRAIN[@]}" \
  --out models/buildings-unet/1.2.0 --threads 2
set_postprocess 1.2.0 shade_neighbours true shaded_roof_blueness 1.4 shaded_roof_brightness 0.7 \
  shadow_through_roofs true split_thresholds '[0.3, 0.2, 0.1]' min_split_m2 230.0
nice -n 5 "$BASELINE" -v train buildings --rescore --keep-postprocess --data "${TRAIN[@]}" --val "${VAL[@]}" \
  --out models/buildings-unet/1.2.0 --threads 2
fi

if [ "$WHAT" = all ] || [ "$WHAT" = vehicles ]; then
nice -n 5 "$BASELINE" -v train vehicles --data "${TRAIN[@]}" --val "${VAL[@]}" \
  --out models/vehicles-centernet/1.0.0 --epochs 100 --iters-per-epoch 100 --max-minutes "$MINUTES" \
  --seed 0 --threads 2 --no-progress
fi
