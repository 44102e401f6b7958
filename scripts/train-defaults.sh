#!/usr/bin/env bash
# The recipe of the shipped default models: the demo corpus, one shared vocoder, one StyleGAN2 per
# material, then export, directions and evaluation into models/. Every step resumes, so run it
# again (in a later session) to continue where it stopped; MINUTES bounds each training step's
# wall time in this call (0: train to the end). Runs save often (and on Ctrl-C/SIGTERM), so a
# killed session loses minutes, not hours.
#
#   scripts/train-defaults.sh                 # everything, to the end
#   MINUTES=60 scripts/train-defaults.sh      # at most an hour per training step
#   PLAN="drums:drums::drums:" scripts/train-defaults.sh   # only drums
#
# The shipped folders were exported when they met their bars, long before the step counts below;
# each card records the step, wall time and hardware it was exported at.
set -euo pipefail
cd "$(dirname "$0")/.."
RIG=${RIG:-.venv/bin/rig}
RUNS=${RUNS:-runs}
CORPUS=$RUNS/corpus
MINUTES=${MINUTES:-0}
VOCODER_STEPS=${VOCODER_STEPS:-60000}
GAN_STEPS=${GAN_STEPS:-20000}

$RIG data demo "$CORPUS"
$RIG train vocoder "$CORPUS"/{drums,bass,pads,texture} --out "$RUNS/vocoder" \
    --steps "$VOCODER_STEPS" --adversarial-from 50000 --save-every 250 --minutes "$MINUTES"
$RIG export "$RUNS/vocoder" --name vocoder --models models
for material in drums bass pads texture; do
    $RIG eval models/vocoder --data "$CORPUS/$material-heldout" --loops 100
done
declare -A TAGS=(
    [drums]=drums,beat,groove,techno,house,breakbeat,hiphop,funk
    [bass]=bass,bassline,sub
    [pads]=pads,pad,chords,ambient,strings,atmosphere
    [texture]=texture,noise,foley,ambient
)
# The GAN runs in order, as run:material:init:release:steps (steps empty: GAN_STEPS). Pitched
# material learns harmonics slowly from scratch, so the shipped ones pass their weights along: pads
# started from the bass run at step 1150, and the shipped bass (run bass-ft) from the pads run at
# step 500; the pads run then goes on to its release. An entry with no release is a stepping stone;
# a run already past an entry's steps does nothing for it.
PLAN=${PLAN:-drums:drums::drums: bass:bass:::1150 pads:pads:bass::500 bass-ft:bass:pads:bass: pads:pads:bass:pads:}
for entry in $PLAN; do
    IFS=: read -r run material init release steps <<< "$entry"
    from=()
    if [[ -n "$init" && ! -e "$RUNS/$run/config.json" ]]; then
        from=(--init "$RUNS/$init")
    fi
    $RIG train stylegan2 "$CORPUS/$material" --out "$RUNS/$run" --steps "${steps:-$GAN_STEPS}" \
        --save-every 100 --minutes "$MINUTES" "${from[@]}"
    [[ -n "$release" ]] || continue
    $RIG export "$RUNS/$run" --name "$release" --models models --vocoder vocoder \
        --tags "${TAGS[$material]:-$material}"
    $RIG train directions "models/$release"
    $RIG eval "models/$release" --data "$CORPUS/$material-heldout" --train "$CORPUS/$material"
done
