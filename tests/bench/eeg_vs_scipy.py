#!/usr/bin/env python3
"""The issue's EEG workload in scipy/numpy, beside hsp's kernels.

64 channels at 1 kHz in blocks of 32 samples: a 4th-order Butterworth
band-pass 1-40 Hz (4 sections) then a 50 Hz notch (Q 30), each block through
`sosfilt` with its `zi` carried over; a 256-point Hann frame every 128
samples through `rfft`, power |X|^2; the five EEG band powers (relative) by
slice sums over bin ranges computed once. The same sizes as the divan
benchmarks of plugins/iir, fft and bandpower.

Run from the repository root (numpy and scipy in a local venv, which git
ignores):

    python3 -m venv .venv && .venv/bin/pip install numpy scipy
    nice -n 10 .venv/bin/python tests/bench/eeg_vs_scipy.py        # scipy/numpy only
    nice -n 10 .venv/bin/python tests/bench/eeg_vs_scipy.py --hsp  # and hsp's benches, with ratios

`--hsp` runs `nice -n 10 cargo bench` for the three crates right after the
Python timings, so both sides see the same machine load (printed with
`uptime`). Figures are medians.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

import numpy as np
from scipy import signal

CHANNELS, FS, BLOCK = 64, 1000.0, 32
SIZE, HOP = 256, 128
BANDS = [(1.0, 4.0), (4.0, 8.0), (8.0, 13.0), (13.0, 30.0), (30.0, 45.0)]


def median_seconds(fn, repeat=15, number=None):
    """Median over `repeat` runs of the time of one call of `fn`."""
    if number is None:
        number, elapsed = 1, 0.0
        while elapsed < 0.02:
            number *= 2
            start = time.perf_counter()
            for _ in range(number):
                fn()
            elapsed = time.perf_counter() - start
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        runs.append((time.perf_counter() - start) / number)
    return statistics.median(runs)


def iir():
    """ns per channel-sample: band-pass then notch on one 64 x 32 block."""
    bandpass = signal.butter(4, [1.0, 40.0], btype="bandpass", fs=FS, output="sos")
    notch = signal.tf2sos(*signal.iirnotch(50.0, 30.0, fs=FS))
    rng = np.random.default_rng(1)
    block = rng.uniform(-50, 50, (CHANNELS, BLOCK)).astype(np.float32)
    zi_bp = np.zeros((bandpass.shape[0], CHANNELS, 2))
    zi_notch = np.zeros((notch.shape[0], CHANNELS, 2))

    def run():
        nonlocal zi_bp, zi_notch
        y, zi_bp = signal.sosfilt(bandpass, block, axis=-1, zi=zi_bp)
        y, zi_notch = signal.sosfilt(notch, y, axis=-1, zi=zi_notch)
        return y.astype(np.float32)

    return median_seconds(run) / (CHANNELS * BLOCK) * 1e9


def fft():
    """us per frame of 64 channels: window, rfft, |X|^2 as float32."""
    window = signal.get_window("hann", SIZE)
    rng = np.random.default_rng(2)
    frames = rng.uniform(-50, 50, (CHANNELS, SIZE)).astype(np.float32)

    def run():
        spectrum = np.fft.rfft(frames * window, axis=-1)
        return (spectrum.real**2 + spectrum.imag**2).astype(np.float32)

    return median_seconds(run) * 1e6


def bandpower():
    """us per frame of 64 channels: relative band power by slice sums."""
    freqs = np.fft.rfftfreq(SIZE, 1.0 / FS)
    ranges = [(np.searchsorted(freqs, lo), np.searchsorted(freqs, hi)) for lo, hi in BANDS]
    span = (ranges[0][0], ranges[-1][1])
    bin_hz = FS / SIZE
    rng = np.random.default_rng(3)
    power = rng.uniform(1, 1000, (CHANNELS, SIZE // 2 + 1)).astype(np.float32)

    def run():
        p = power.astype(np.float64)
        absolute = np.stack([p[:, a:b].sum(axis=1) for a, b in ranges], axis=1) * bin_hz
        total = p[:, span[0]:span[1]].sum(axis=1, keepdims=True) * bin_hz
        return (absolute / np.where(total > 0, total, np.inf)).astype(np.float32)

    return median_seconds(run) * 1e6


UNITS = {"ns": 1e-3, "µs": 1.0, "us": 1.0, "ms": 1e3, "s": 1e6}


def hsp_medians(package, bench, names):
    """Median times (us) of divan benchmarks whose row names are `names`."""
    out = subprocess.run(
        ["nice", "-n", "10", "cargo", "bench", "-q", "-p", package, "--bench", bench],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found = {}
    for line in out.splitlines():
        # "│  ├─ name  fastest │ slowest │ median │ mean │ samples │ iters"
        cells = [c.strip() for c in re.sub(r"^[\s│├╰─]+", "", line).split("│")]
        head = cells[0].split()
        if len(cells) >= 4 and head and head[0] in names:
            value, unit = cells[2].split()
            found[head[0]] = float(value) * UNITS[unit]
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hsp", action="store_true", help="also run hsp's divan benches")
    args = parser.parse_args()
    uptime = lambda: subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()

    print(uptime())
    print(f"numpy {np.__version__}, scipy {sys.modules['scipy'].__version__}; "
          f"{CHANNELS} channels, {FS:g} Hz, blocks of {BLOCK}")
    scipy_iir = iir()
    scipy_fft = fft()
    scipy_bp = bandpower()
    print(f"  scipy sosfilt band-pass + notch (zi per block): {scipy_iir:8.2f} ns per sample")
    print(f"  numpy window + rfft + |X|^2:                    {scipy_fft:8.2f} us per frame")
    print(f"  numpy relative band power, slice sums:          {scipy_bp:8.2f} us per frame")
    if not args.hsp:
        return
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    iir_us = hsp_medians("hsp-iir", "iir", {"bandpass_then_notch"})["bandpass_then_notch"]
    fft_us = hsp_medians("hsp-fft", "fft", {"power"})["power"]
    bp_us = hsp_medians("hsp-bandpower", "bandpower", {"relative"})["relative"]
    hsp_iir = iir_us * 1e3 / (CHANNELS * BLOCK)
    print(uptime())
    print(f"  hsp iir -> iir_filtered stages:                 {hsp_iir:8.2f} ns per sample"
          f"   hsp/scipy {hsp_iir / scipy_iir:.3f}")
    print(f"  hsp fft stage (4 blocks, one frame):            {fft_us:8.2f} us per frame"
          f"   hsp/numpy {fft_us / scipy_fft:.3f}")
    print(f"  hsp bandpower stage (relative):                 {bp_us:8.2f} us per frame"
          f"   hsp/numpy {bp_us / scipy_bp:.3f}")


if __name__ == "__main__":
    main()
