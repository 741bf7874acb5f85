#!/usr/bin/env python3
"""Write scipy reference data for the Rust Butterworth/notch design and sosfilt.

Run from any directory:  python3 make_reference.py
Needs numpy and scipy (`pip install numpy scipy`). Output files land next to
this script and are read by `plugins/iir/src/design.rs` tests via include_str!.

Files (all plain CSV, floats written with Python's shortest round-trip repr,
i.e. full f64 precision):
  input.csv    one column `x`: the test signal. Values are float32-exact so the
               Rust side (which filters f32 samples) sees bit-identical input.
  cases.csv    name,kind,order,f1,f2,fs   (f2 = 0 when unused; kind `notch`
               uses f1 = notch frequency and order = Q)
  sos.csv      name,section,b0,b1,b2,a0,a1,a2   (scipy's SOS rows)
  outputs.csv  header = case names; row i = sosfilt(sos, x)[i] in float64
"""

import csv
import os

import numpy as np
import scipy
from scipy import signal

HERE = os.path.dirname(os.path.abspath(__file__))
N = 400
FS = 250.0


def make_input():
    # Deterministic mix: slow drift + DC (exercises high-pass), EEG-band sines,
    # 50 Hz mains (exercises notch/band-stop) and seeded white noise.
    t = np.arange(N) / FS
    x = (
        30.0
        + 20.0 * np.sin(2 * np.pi * 0.7 * t + 0.3)
        + 15.0 * np.sin(2 * np.pi * 10.0 * t)
        + 8.0 * np.sin(2 * np.pi * 21.0 * t + 1.1)
        + 10.0 * np.sin(2 * np.pi * 50.0 * t + 0.5)
        + 5.0 * np.random.default_rng(20240611).standard_normal(N)
    )
    return x.astype(np.float32).astype(np.float64)


def cases():
    out = []
    for order in (1, 2, 4, 8):
        out.append((f"lowpass_o{order}", "lowpass", order, 30.0, 0.0, FS))
        out.append((f"highpass_o{order}", "highpass", order, 1.0, 0.0, FS))
        out.append((f"bandpass_o{order}", "bandpass", order, 8.0, 13.0, FS))
        out.append((f"bandstop_o{order}", "bandstop", order, 48.0, 52.0, FS))
    # Odd orders, wide bands (real digital poles, scipy's special pairing
    # cases) and other sample rates.
    out.append(("bandpass_wide_o3", "bandpass", 3, 1.0, 45.0, FS))
    out.append(("bandstop_wide_o5", "bandstop", 5, 5.0, 100.0, FS))
    out.append(("lowpass_o5_fs1000", "lowpass", 5, 40.0, 0.0, 1000.0))
    out.append(("highpass_o7_fs500", "highpass", 7, 0.5, 0.0, 500.0))
    out.append(("notch50_fs250", "notch", 30, 50.0, 0.0, 250.0))
    out.append(("notch50_fs1000", "notch", 30, 50.0, 0.0, 1000.0))
    return out


def design(kind, order, f1, f2, fs):
    if kind == "notch":
        b, a = signal.iirnotch(f1, order, fs=fs)
        return np.concatenate([b, a])[None, :]
    wn = f1 if kind in ("lowpass", "highpass") else [f1, f2]
    return signal.butter(order, wn, btype=kind, fs=fs, output="sos")


def main():
    x = make_input()
    all_cases = cases()
    outputs = {}
    with open(os.path.join(HERE, "cases.csv"), "w", newline="") as fc, open(
        os.path.join(HERE, "sos.csv"), "w", newline=""
    ) as fs_:
        wc = csv.writer(fc, lineterminator="\n")
        ws = csv.writer(fs_, lineterminator="\n")
        wc.writerow(["name", "kind", "order", "f1", "f2", "fs"])
        ws.writerow(["name", "section", "b0", "b1", "b2", "a0", "a1", "a2"])
        for name, kind, order, f1, f2, fs in all_cases:
            sos = design(kind, order, f1, f2, fs)
            wc.writerow([name, kind, order, repr(f1), repr(f2), repr(fs)])
            for i, row in enumerate(sos):
                ws.writerow([name, i] + [repr(float(v)) for v in row])
            outputs[name] = signal.sosfilt(sos, x)

    with open(os.path.join(HERE, "input.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["x"])
        for v in x:
            w.writerow([repr(float(v))])

    names = [c[0] for c in all_cases]
    with open(os.path.join(HERE, "outputs.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(names)
        for i in range(N):
            w.writerow([repr(float(outputs[n][i])) for n in names])

    print(f"numpy {np.__version__}, scipy {scipy.__version__}: "
          f"{len(all_cases)} cases x {N} samples written to {HERE}")


if __name__ == "__main__":
    main()
