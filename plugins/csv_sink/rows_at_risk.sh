#!/bin/sh
# Rows of a live CSV recording that a crash loses: runs a live pipeline
# (synthetic 4-channel EEG at 250 Hz in blocks of 25, low-passed, written by
# `csv_sink`), sends it SIGKILL after SECONDS, and counts the whole
# rows on disk, for three flush settings:
#
#   default          flush_interval_s = 1.0 (the default)
#   by size only     flush_interval_s = 0 (the sink's behaviour before the
#                    interval existed: a 64 KiB buffer, flushed when full)
#   every packet     flush_every = 1 (what the pipeline had produced)
#
# Usage, from the repository root:
#   plugins/csv_sink/rows_at_risk.sh [SECONDS...]     (default: 3.7)
# Builds the host and the three plugins in release mode first.
set -eu

cargo build --release --quiet -p hsp-host -p hsp-synth -p hsp-iir -p hsp-csv-sink
release=${CARGO_TARGET_DIR:-target}/release
host=$release/host
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

pipeline() { # $1: extra line for the sink's config
    cat <<EOF
[pipeline]
name = "rows_at_risk"

[[stage]]
id = "eeg"
plugin = "synth"
[stage.config]
channels = 4
sample_rate_hz = 250.0
block_size = 25
realtime = true

[[stage]]
id = "lowpass"
plugin = "iir"
inputs = ["eeg"]
[stage.config]
type = "lowpass"
cutoff_hz = [30.0]

[[stage]]
id = "csv"
plugin = "csv_sink"
inputs = ["lowpass"]
[stage.config]
path = "$work/out.csv"
$1
EOF
}

# Prints "<whole rows on disk> <ends on a row boundary: yes/no/empty>".
kill_after() { # $1: seconds, $2: pipeline file
    rm -f "$work/out.csv"
    "$host" run "$2" --no-watch --plugins "$release" >"$work/run.log" 2>&1 &
    pid=$!
    sleep "$1"
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
    if [ ! -s "$work/out.csv" ]; then
        echo "0 empty"
        return
    fi
    lines=$(wc -l <"$work/out.csv")
    if [ "$(tail -c 1 "$work/out.csv" | od -An -tx1 | tr -d ' ')" = "0a" ]; then
        echo "$((lines - 1)) yes"
    else
        echo "$((lines - 1)) no"
    fi
}

pipeline "" >"$work/default.toml"
pipeline "flush_interval_s = 0" >"$work/by_size.toml"
pipeline "flush_every = 1" >"$work/every_packet.toml"

times=${*:-3.7}
printf '%-8s %-22s %-22s %-22s\n' "SIGKILL" "default (1 s)" "by size only" "every packet"
for seconds in $times; do
    set -- $(kill_after "$seconds" "$work/default.toml") \
        $(kill_after "$seconds" "$work/by_size.toml") \
        $(kill_after "$seconds" "$work/every_packet.toml")
    printf '%-8s %-22s %-22s %-22s\n' "${seconds}s" \
        "$1 rows (whole: $2)" "$3 rows (whole: $4)" "$5 rows (whole: $6)"
done
