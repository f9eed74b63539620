#!/usr/bin/env bash
# Hold music without dead air: copies of Asterisk's music-on-hold files with their quiet
# lead-in and fade-out cut and their pauses held to 0.5 s (below -36 dBFS, the level the load
# benchmark's callers hear as silence), as 8 kHz signed-linear files for asterisk/musiconhold.conf's [default] class
# (directory moh-hotline). Debian's opsound tracks open with up to 1.4 s of near-silence and
# are played in random order, so a caller put on hold heard up to that long of nothing, more
# between two tracks.
#
#   scripts/hold-music.sh SOURCE_DIR TARGET_DIR
set -euo pipefail
source_dir=${1:?usage: hold-music.sh SOURCE_DIR TARGET_DIR}
target_dir=${2:?usage: hold-music.sh SOURCE_DIR TARGET_DIR}
mkdir -p "$target_dir"
shopt -s nullglob
made=0
for track in "$source_dir"/*.gsm "$source_dir"/*.wav "$source_dir"/*.ulaw "$source_dir"/*.sln "$source_dir"/*.slin; do
    name=$(basename "${track%.*}")
    out="$target_dir/$name.slin"
    [ -s "$out" ] && [ "$out" -nt "$track" ] && continue
    # silence: cut the lead-in, shorten every quiet stretch inside to 0.5 s (-l keeps that
    # much: a musical pause, not a gap), then the same from the end for the fade-out
    sox "$track" -r 8000 -c 1 -b 16 -e signed-integer -t raw "$out.tmp" \
        silence -l 1 0.02 -36d -1 0.5 -36d reverse silence 1 0.02 -36d reverse
    mv "$out.tmp" "$out"
    made=$((made + 1))
done
echo "hold music: $made track(s) written to $target_dir"
