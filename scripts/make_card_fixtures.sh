#!/usr/bin/env bash
# Reproduce the spoken-card fixtures tests/fixtures/audio/en_cards_*.wav/.txt from the
# Debian package pocketsphinx-testdata (BSD-2-Clause, CMU), directory
# usr/share/pocketsphinx/test/data/cards/. The recordings are already 16 kHz mono PCM16
# WAV with a plain 44-byte header, so they are copied unchanged and checked by sha256
# (package version 0.8+5prealpha+1-15). Needs apt-get, dpkg and python3 (stdlib only).
#
# Usage: scripts/make_card_fixtures.sh [OUT_DIR]   (default: tests/fixtures/audio)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="${1:-$repo_root/tests/fixtures/audio}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
if ! apt-get download pocketsphinx-testdata >/dev/null 2>&1; then
    apt-get update >/dev/null
    apt-get download pocketsphinx-testdata >/dev/null
fi
dpkg -x pocketsphinx-testdata_*.deb root
cards="$work/root/usr/share/pocketsphinx/test/data/cards"

# source id | fixture name | sha256 of the source WAV | words spoken (cards.transcription)
fixtures=(
    "003|en_cards_seven_of_clubs|00d283e46bc257ae479e4aa86593cadb541656eba1d19fc8abeece37f6a5a18b|seven of clubs"
    "004|en_cards_five_five|4c44a8177f5b128b99f078cdeb918119933155574231f1833e8840d1af09c521|five five"
    "005|en_cards_eight_of_spades|090f18f5f76cf8b2b43cd9e6b07823f4685a4742d9a36cd98b174a6586c18cf9|eight of spades four of clubs seven of hearts"
)

mkdir -p "$out_dir"
for entry in "${fixtures[@]}"; do
    IFS='|' read -r id name sha words <<<"$entry"
    src="$cards/$id.wav"
    echo "$sha  $src" | sha256sum --check --quiet
    # The transcript must be the package's own line for this id.
    grep -q "^<s> $words  *</s> ($id)\$" "$cards/cards.transcription"
    python3 - "$src" <<'PY'
import sys
import wave

with wave.open(sys.argv[1]) as clip:
    params = clip.getparams()
assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 16000), params
PY
    cp "$src" "$out_dir/$name.wav"
    printf '%s\n' "$words" >"$out_dir/$name.txt"
    echo "wrote $out_dir/$name.wav ($(stat -c %s "$out_dir/$name.wav") bytes) and $name.txt"
done
