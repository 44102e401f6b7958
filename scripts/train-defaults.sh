#!/usr/bin/env bash
# The recipe of the shipped default models: the demo corpus, the shared full-band vocoders, one
# StyleGAN2 per material, then export, directions and evaluation into models/. Every step
# resumes, so run it again (in a later session, on a new machine) to continue where it stopped;
# MINUTES bounds each training step's wall time in this call (0: train to the end). Runs save
# often (and on Ctrl-C/SIGTERM), so a killed session loses minutes, not hours.
#
#   scripts/train-defaults.sh                 # everything, to the end
#   scripts/train-defaults.sh vocoder         # only the corpus and the vocoder
#   scripts/train-defaults.sh gans            # only the corpus and the loop models
#   MINUTES=60 scripts/train-defaults.sh      # at most an hour per training step
#   PLAN="drums:drums:models/drums:drums:" scripts/train-defaults.sh gans   # only drums
#   RELEASES=runs/releases scripts/train-defaults.sh   # export there, to compare before shipping
#
# The vocoder and the GAN chain can run at the same time (two processes, THREADS=1 each on a
# two-core machine). The shipped folders were exported when they met their bars, long before
# the step counts below; each card records the step, wall time and hardware it was exported at.
set -euo pipefail
cd "$(dirname "$0")/.."
RIG=${RIG:-.venv/bin/rig}
RUNS=${RUNS:-runs}
CORPUS=$RUNS/corpus
MINUTES=${MINUTES:-0}
THREADS=${THREADS:-0}
VOCODER_STEPS=${VOCODER_STEPS:-10000}
GAN_STEPS=${GAN_STEPS:-20000}
RELEASES=${RELEASES:-models}
STAGE=${1:-all}
mkdir -p "$RELEASES"
for vocoder in vocoder vocoder-tuned vocoder-tuned-capped; do
    [[ -e $RELEASES/$vocoder ]] || cp -r models/$vocoder "$RELEASES/"
done

$RIG data demo "$CORPUS"
# Drums train on three times the loops (see the GAN stage's notes); the other materials on 2 000.
$RIG data demo "$CORPUS" --materials drums --loops 6000

if [[ $STAGE == all || $STAGE == vocoder ]]; then
    # Full band: 24 kHz mels in, 48 kHz audio out, trained on every material of the corpus
    # (melody only serves the vocoder), with gain/tilt/pitch augmentation. The recorded loop_*
    # files of sonic-pi-samples are in no training set: rig eval --recorded uses them.
    # Three vocoder folders ship, two sets of weights. `vocoder` is 50 000 steps from scratch
    # (reconstruction losses alone, 7.2 h on one core) under the iSTFT head's first magnitude cap
    # (100). `vocoder-tuned` goes on from it under the cap of n_fft / 2: 10 000 steps of
    # reconstruction losses, the learning rate falling by a half cosine from step 4 000 (42 min on
    # one core; a step with the discriminators takes ~2 s, 20x a reconstruction step, and did not
    # help the network alone). Measured 2026-12-01 on the recorded loops, network alone: 0.271 ->
    # 0.236 (Griffin-Lim 0.237). Each loop model plays through the one it measures better through
    # (FD ratio on the same latents and held-out loops; rig bench sound): bass 0.181 -> 0.164 and
    # organic 0.375 -> 0.341 through vocoder-tuned. Pads (0.261 -> 0.274) and texture (0.347 ->
    # 0.363) keep vocoder. Drums (then FD 0.269 -> 0.257) kept it at first: the raised cap gives
    # the kick its full lows (+3 dB below 150 Hz) while the air falls ~1 dB, so the takes' energy
    # above 12 kHz fell from 0.79 % to 0.64 % and a take of the full-band test fell under issue
    # #16's 0.05 %; since 2026-12-02 they play through vocoder-tuned-capped (below). The same
    # fine-tune under the old cap (14 000 steps) measured worse for all five: drums 0.278, bass
    # 0.185, pads 0.266, texture 0.368, organic 0.418 (against 0.412 then).
    $RIG train vocoder "$CORPUS"/{drums,bass,pads,melody,texture,organic} --out "$RUNS/vocoder-tuned" \
        --init models/vocoder --upsample 2 --augment 0.5 --steps "$VOCODER_STEPS" \
        --decay 4000:"$VOCODER_STEPS" --adversarial-from "$VOCODER_STEPS" \
        --loops-per-dataset 400 --save-every 250 --minutes "$MINUTES" --threads "$THREADS"
    $RIG export "$RUNS/vocoder-tuned" --name vocoder-tuned --models "$RELEASES"
    # The same weights with the head capped at 100 again, the cap `vocoder` trained under: drums
    # play through it. Measured 2026-12-02 (the same latents and held-out loops), drums' FD ratio
    # through vocoder 0.241, vocoder-tuned 0.279, and this copy under caps 100 / 125 / 150 / 200:
    # 0.229 / 0.237 / 0.244 / 0.253; its network alone on the recorded loops 0.2379 / 0.2371 /
    # 0.2366 / 0.2360 (vocoder 0.2714, Griffin-Lim 0.2374). Pads (0.268 -> 0.273) and texture
    # (0.280 -> 0.295 at cap 150) measure worse through it and keep vocoder.
    $RIG export "$RUNS/vocoder-tuned" --name vocoder-tuned-capped --models "$RELEASES" \
        --max-magnitude 100
    for vocoder in vocoder-tuned vocoder-tuned-capped; do
        for material in drums bass pads texture organic; do
            $RIG eval "$RELEASES/$vocoder" --data "$CORPUS/$material-heldout" --loops 100
        done
        $RIG eval "$RELEASES/$vocoder" --recorded --loops 100
    done
fi

[[ $STAGE == all || $STAGE == gans ]] || exit 0
declare -A TAGS=(
    [drums]=drums,beat,groove,techno,house,breakbeat,hiphop,funk
    [bass]=bass,bassline,sub
    [pads]=pads,pad,chords,ambient,strings,atmosphere
    [texture]=texture,noise,glitch,electronic
    [organic]=organic,field,foley,nature,wind,rolling,footsteps,acoustic
)
# The shared vocoder each material plays through (see the vocoder stage); the others: vocoder.
declare -A VOCODER=([drums]=vocoder-tuned-capped [bass]=vocoder-tuned [organic]=vocoder-tuned)
# The GAN runs in order, as run:material:init:release:steps[:train flags[:export flags]] (steps
# empty: GAN_STEPS; flags comma-separated, e.g. --profile-weight=5). init is another run in $RUNS
# or a release folder (a path with a slash); it only starts a new run.
# Every model goes on from its shipped folder (a release folder carries the EMA generator, the
# discriminator starts afresh). Texture and organic started from drums (onsets) before; from
# pads, texture scores a lower FD ratio (0.416 against 0.485) and organic has a sharp edge at
# the loop point on none of 20 engine takes, against 6 of 20 (from the shipped texture, organic
# scored 0.703 after 1 511 steps). Every run trains with discriminator augmentation.
# drums2 (from the shipped step 1 572) took drums from 0.438 to 0.294 at its step 1 780 and to
# 0.269 at 2 765, shipped. Measured on 2026-12-01: three times the loops (rig data demo
# --loops 6000) did not help. drums2 went on 1 110 steps on them to 0.311 (the augmentation p
# still reached its cap), and texture4 (1 560 steps from the shipped texture) scored 0.435.
# Measured on 2026-12-01 too: restarts from the shipped drums and texture on their 2 000 loops
# with a fresh discriminator: drums 0.269 at step 800 (no better); texture 0.350 at step 300, but
# with twice the engine takes that have an edge at the loop point (24 of 60 against 12), so not
# shipped. A run from --init now ramps its EMA up from the init's steps (before: from 0).
# Measured on 2026-11-30: 1 900 more steps of the same settings did not help texture or organic.
# organic3 fell back to 0.534 at step 6 591 (shipped: 0.412 at 4 755, augmentation p at its cap),
# and texture3 stayed flat at 0.414 at 4 667 (shipped: 0.416). The shipped folders stay; a
# release only replaces them when it measures better.
# Measured on 2026-12-01: texture and pads clicked at the loop point (21.0 % and 22.5 % of their
# generated loops, against 9.0 % and 4.7 % at a beat line), learnt from the zero-padded edge
# frames of the old analysis. rig data demo now prepares every dataset again with the loop
# analysis. The shipped pads is pads8 (703 steps from the pads shipped before, fresh
# discriminator), then pads9 (300 steps from pads8 with --profile-weight 5), exported --live.
#  - 6.0 % at the loop point (3.4 % at a beat line); FD ratio 0.261 (before: 0.256).
#  - Its EMA still clicked: 28.5 % at step 300.
# Measured on 2026-12-01 too: rig train calibration (after export, below) takes that column out
# of any export. Texture: the shipped one calibrated went from 21.0 % to 2.5 % (9.1 % at a beat
# line), FD ratio 0.416 -> 0.409; the shipped texture is now the restart above at step 300 (EMA),
# calibrated: FD ratio 0.347, 4.0 % at the loop point (7.6 % at a beat line). texture9 (from
# texture8, --profile-weight 5, 1 004 steps) scored better on the validation loops (EMA at step
# 800: 20.1 against 24.3) but not on the held-out ones (0.409). Texture therefore goes on from its
# shipped folder like the others, EMA and calibrated. Pads (whose last weights had lost the column)
# calibrated measured 8.5 % at the loop point against 6.0 % uncalibrated (3.5 % at a beat line;
# FD ratio 0.260 against 0.261), so only the materials in CALIBRATE are calibrated.
# Measured on 2026-12-01 too: drums11, 700 steps from the shipped drums on the 6 000 loops with a
# fresh discriminator and --profile-weight 5: FD ratio 0.269 -> 0.197 (bar 0.25), as played
# 0.26 -> 0.177, loop point 2.0 % (34.7 % at a beat line); its augmentation p fell to 0.06. Step
# 700 was chosen on 245 other demo loops (FD 27.9 for the one shipped before, 24.0), shipped.
# The same for texture (texture14, its 6 000 loops prepared again with the loop analysis) and
# organic (organic13, 6 000 loops from rig data demo --materials organic --loops 6000) measured
# worse in the steps tried: texture at step 500 0.416 on the held-out loops (shipped 0.347, though
# 22.0 against 24.3 on its validation loops: those were other latents, not other loops, see
# README and fd_ratio_min / _max); organic's FD on 250 new validation loops 26.5 / 29.7
# at steps 500 / 700 (shipped 19.2). Both stay on their 2 000 loops.
# Measured on 2026-12-01 too: organic8, 1 400 steps from the shipped organic on its loop-analysed
# loops with --profile-weight 5 and a fresh discriminator, calibrated: FD ratio 0.412 -> 0.375,
# loop point 3.0 % -> 0.5 %; shipped. Its directions were fitted on 2 048 loops (512: bass 79 %
# rising, 2 048: 96 %), so the recipe fits every model's directions on 2 048.
# Measured on 2026-12-02: every measurement had drawn its latents from torch's seed 0, whose
# first latents every shipped model maps far out of its own w distribution (README: "The latents
# every measurement drew"); on latents of their own (rig/latents.py) the texture shipped before
# scores 0.336, and texture17 (the drums recipe above on texture's 6 000 loops, as texture14) at
# step 1 500, calibrated, 0.302 (0.283-0.310 over three draws; directions rising on 96 / 100 /
# 100 %); shipped. Step 1 500 was chosen over 1 000 on the 250 validation loops (measurement draws
# 0 / 1: 19.06 / 18.51 against 18.68 / 19.12).
# Measured on 2026-12-02 too: the same run went on to step 2 000 (validation FD 17.38 / 17.06):
# held-out FD ratio 0.280 (0.267-0.280), directions 90 / 94 / 100 % of 96 latents; shipped.
# organic18 (the same recipe on organic's 6 000 loops, from the shipped organic): FD on its 250
# validation loops (measurement draws 0 / 1; shipped 19.24 / 20.63) 23.06 / 24.02 at step 500,
# 21.19 / 22.27 at 1 000, best 18.53 / 18.98 at 1 600, 20.33 / 19.96 at 2 000, 25.98 / 23.48 at
# 2 800 (the run drifts after 1 800; stopped at 2 850). Step 1 600 built
# by the commands below (calibrated, directions on 2 048): held-out FD ratio 0.304 -> 0.301
# (0.301-0.308 over three draws; bar 0.3), as played 0.344 -> 0.328, but its bass direction rose
# on 72 % of 96 latents (the shipped one's stored directions on it: 73 %; bar 75 %), so organic
# stays (measured 2026-12-02).
$RIG data demo "$CORPUS" --materials texture --loops 6000  # after the vocoder stage's corpus
CALIBRATE=${CALIBRATE:-texture organic}
PLAN=${PLAN:-drums11:drums:models/drums:drums::--profile-weight=5 bass2:bass:models/bass:bass: pads10:pads:models/pads:pads::--profile-weight=5:--live texture17:texture:models/texture:texture:2000:--profile-weight=5 organic9:organic:models/organic:organic::--profile-weight=5}
for entry in $PLAN; do
    IFS=: read -r run material init release steps train_flags export_flags <<< "$entry"
    from=()
    IFS=, read -ra trained_with <<< "$train_flags"
    IFS=, read -ra exported_with <<< "$export_flags"
    if [[ -n "$init" && ! -e "$RUNS/$run/config.json" ]]; then
        [[ $init == */* ]] && from=(--init "$init") || from=(--init "$RUNS/$init")
    fi
    $RIG train stylegan2 "$CORPUS/$material" --out "$RUNS/$run" --steps "${steps:-$GAN_STEPS}" \
        --augment 0.3 --save-every 100 --minutes "$MINUTES" --threads "$THREADS" "${from[@]}" \
        "${trained_with[@]}"
    [[ -n "$release" ]] || continue
    $RIG export "$RUNS/$run" --name "$release" --models "$RELEASES" --vocoder "${VOCODER[$material]:-vocoder}" \
        --tags "${TAGS[$material]:-$material}" "${exported_with[@]}"
    # The edge frames' mean shape matched to the loop-analysed data: a column the generator
    # still draws there from the older analysis is not played as a click (rig/train/calibration.py).
    if [[ " $CALIBRATE " == *" $material "* ]]; then
        $RIG train calibration "$RELEASES/$release" --data "$CORPUS/$material"
    fi
    $RIG train directions "$RELEASES/$release" --samples 2048
    $RIG eval "$RELEASES/$release" --data "$CORPUS/$material-heldout" --train "$CORPUS/$material"
done
