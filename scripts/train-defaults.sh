#!/usr/bin/env bash
# The recipe of the shipped default models: the demo corpus, one shared vocoder, one StyleGAN2 per
# material, then export, directions and evaluation into models/. Every step resumes, so run it
# again (in a later session) to continue where it stopped; MINUTES bounds each training step's
# wall time in this call (0: train to the end). Runs save often (and on Ctrl-C/SIGTERM), so a
# killed session loses minutes, not hours.
#
#   scripts/train-defaults.sh                 # everything, to the end
#   MINUTES=60 scripts/train-defaults.sh      # at most an hour per training step
#   MATERIALS="drums bass" scripts/train-defaults.sh
#
# The shipped folders were exported when they met their bars, before the step counts below; each
# card records the step, wall time and hardware it was exported at. pads starts from the bass
# run's weights (--init: both are pitched GM material, so it converges sooner).
set -euo pipefail
cd "$(dirname "$0")/.."
RIG=${RIG:-.venv/bin/rig}
RUNS=${RUNS:-runs}
CORPUS=$RUNS/corpus
MINUTES=${MINUTES:-0}
MATERIALS=${MATERIALS:-drums bass pads}
VOCODER_STEPS=${VOCODER_STEPS:-60000}
GAN_STEPS=${GAN_STEPS:-20000}

$RIG data demo "$CORPUS"
$RIG train vocoder "$CORPUS"/{drums,bass,pads,texture} --out "$RUNS/vocoder" \
    --steps "$VOCODER_STEPS" --adversarial-from 50000 --save-every 250 --minutes "$MINUTES"
$RIG export "$RUNS/vocoder" --name vocoder --models models
declare -A TAGS=(
    [drums]=drums,beat,groove,techno,house,breakbeat,hiphop,funk
    [bass]=bass,bassline,sub,groove
    [pads]=pads,pad,chords,ambient,strings,atmosphere
    [texture]=texture,noise,foley,ambient
)
declare -A INIT=([pads]=bass)
for material in $MATERIALS; do
    init=()
    if [[ -n "${INIT[$material]:-}" && ! -e "$RUNS/$material/config.json" ]]; then
        init=(--init "$RUNS/${INIT[$material]}")
    fi
    $RIG train stylegan2 "$CORPUS/$material" --out "$RUNS/$material" --steps "$GAN_STEPS" \
        --save-every 100 --minutes "$MINUTES" "${init[@]}"
    $RIG export "$RUNS/$material" --name "$material" --models models --vocoder vocoder \
        --tags "${TAGS[$material]:-$material}"
    $RIG train directions "models/$material"
    $RIG eval "models/$material" --data "$CORPUS/$material-heldout" --train "$CORPUS/$material"
done
