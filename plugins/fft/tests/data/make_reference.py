#!/usr/bin/env python3
"""Write numpy/scipy reference spectra for the Rust sliding-window FFT.

Run from any directory:  python3 make_reference.py
Needs numpy and scipy (`pip install numpy scipy`). Output files land next to
this script and are read by `plugins/fft/src/spectrum.rs` tests via
include_str!.

Definition being pinned: frame k covers x[k*hop : k*hop + size] (only full
frames), w = scipy.signal.get_window(window, size) (periodic, fftbins=True),
magnitude = np.abs(np.fft.rfft(frame * w)), power = magnitude**2, no further
normalisation.

Files (CSV, floats as Python's shortest round-trip repr = full f64 precision):
  input.csv   one column `x`, float32-exact values (the Rust side takes f32).
  cases.csv   name,size,hop,window,scale
  frames.csv  name,frame,bin0,bin1,...   (size//2 + 1 bins per row)
"""

import csv
import os

import numpy as np
import scipy
from scipy import signal

HERE = os.path.dirname(os.path.abspath(__file__))
N = 600
FS = 250.0

CASES = [
    # name, size, hop, window, scale
    ("hann_mag", 128, 48, "hann", "magnitude"),
    ("hann_pow", 128, 48, "hann", "power"),
    ("hamming_mag", 128, 48, "hamming", "magnitude"),
    ("hamming_pow", 128, 48, "hamming", "power"),
    ("boxcar_mag", 128, 48, "boxcar", "magnitude"),
    ("boxcar_pow", 128, 48, "boxcar", "power"),
    # hop > size: samples between frames are skipped.
    ("hann_pow_gap", 64, 100, "hann", "power"),
    # odd size: size//2 + 1 bins, no Nyquist bin.
    ("hamming_mag_odd", 75, 30, "hamming", "magnitude"),
]


def make_input():
    t = np.arange(N) / FS
    x = (
        -12.0
        + 25.0 * np.sin(2 * np.pi * 10.0 * t + 0.2)
        + 9.0 * np.sin(2 * np.pi * 23.4 * t)
        + 4.0 * np.random.default_rng(77).standard_normal(N)
    )
    return x.astype(np.float32).astype(np.float64)


def frames(x, size, hop, window, scale):
    w = signal.get_window(window, size)
    out = []
    k = 0
    while k * hop + size <= len(x):
        mag = np.abs(np.fft.rfft(x[k * hop : k * hop + size] * w))
        out.append(mag if scale == "magnitude" else mag**2)
        k += 1
    return out


def main():
    x = make_input()
    with open(os.path.join(HERE, "input.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["x"])
        for v in x:
            w.writerow([repr(float(v))])
    with open(os.path.join(HERE, "cases.csv"), "w", newline="") as fc, open(
        os.path.join(HERE, "frames.csv"), "w", newline=""
    ) as ff:
        wc = csv.writer(fc, lineterminator="\n")
        wf = csv.writer(ff, lineterminator="\n")
        wc.writerow(["name", "size", "hop", "window", "scale"])
        wf.writerow(["name", "frame", "bins..."])
        for name, size, hop, window, scale in CASES:
            wc.writerow([name, size, hop, window, scale])
            for k, fr in enumerate(frames(x, size, hop, window, scale)):
                wf.writerow([name, k] + [repr(float(v)) for v in fr])
    print(f"numpy {np.__version__}, scipy {scipy.__version__}: "
          f"{len(CASES)} cases over {N} samples written to {HERE}")


if __name__ == "__main__":
    main()
