#!/bin/sh
# How fast a recording replays: records an hour of 64-channel, 1 kHz
# synthetic EEG to BDF (about 700 MB, in a temporary directory), then
# replays it as fast as possible (`realtime = false`) into `null_sink`, RUNS
# times, and prints the host's real-time factor for each run.
#
# Beside it, in the same run, the floor: reading the same file with `cat`
# into /dev/null (the page cache's speed, after the first read). The ratio
# replay/floor is what decoding and the pipeline cost on top of reading.
# The load average is printed with the figures: on a loaded machine they
# mean little.
#
# Usage, from the repository root:
#   plugins/recording/bench_replay.sh [RUNS] [SECONDS]   (default: 3, 3600)
set -eu

runs=${1:-3}
seconds=${2:-3600}
cargo build --release --quiet -p hsp-host -p hsp-synth -p hsp-recording -p hsp-null-sink
release=${CARGO_TARGET_DIR:-target}/release
host=$release/host
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat > "$work/record.toml" <<TOML
[[stage]]
id = "eeg"
plugin = "synth"
[stage.config]
channels = 64
sample_rate_hz = 1000.0
block_size = 250
duration_s = $seconds
realtime = false

[[stage]]
id = "record"
plugin = "edf_sink"
inputs = ["eeg"]
[stage.config]
path = "$work/hour.bdf"
TOML

cat > "$work/replay.toml" <<TOML
[[stage]]
id = "replay"
plugin = "edf_source"
[stage.config]
path = "$work/hour.bdf"
realtime = false
block_size = 32

[[stage]]
id = "discard"
plugin = "null_sink"
inputs = ["replay.signal"]
TOML

echo "recording $seconds s of 64 channels at 1 kHz to BDF..."
"$host" --plugins "$release" run "$work/record.toml" 2>/dev/null
ls -l "$work/hour.bdf" | awk '{ printf "file: %.0f MB\n", $5 / 1e6 }'
cat "$work/hour.bdf" > /dev/null

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
i=0
while [ "$i" -lt "$runs" ]; do
    i=$((i + 1))
    floor_start=$(date +%s.%N)
    cat "$work/hour.bdf" > /dev/null
    floor_end=$(date +%s.%N)
    start=$(date +%s.%N)
    line=$("$host" --plugins "$release" run "$work/replay.toml" 2>&1 | grep 'x real time' || true)
    end=$(date +%s.%N)
    echo "run $i: $line"
    echo "$start $end $floor_start $floor_end $seconds" | awk '{
        replay = $2 - $1; floor = $4 - $3;
        printf "run %d: replay %.2f s wall (%.0fx real time, host start-up included), cat %.2f s; replay/cat %.1fx\n",
            '"$i"', replay, $5 / replay, floor, replay / floor }'
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
