"""Checks hsp's EDF/BDF reading and writing against the tools labs use:
pyedflib, edfio and MNE. Called by tests/tests/recordings.rs; exits 1 with
what differs. Values agree "to the format's resolution": within half a
digital step (plus float32 rounding), the step being
(physical max - physical min) / (digital max - digital min).

  check-read EDF SIGNAL_CSV... --events EVENTS_CSV
      hsp replayed EDF into SIGNAL_CSVs (one per sample rate) and its
      annotations into EVENTS_CSV; pyedflib and edfio must read the same.
  check-written EDF REFERENCE_CSV EVENTS_CSV
      hsp recorded EDF from the stream in REFERENCE_CSV, with the events in
      EVENTS_CSV; pyedflib, edfio and MNE must read it back the same.
"""

import csv
import datetime
import sys

import numpy as np


def fail(message):
    print(f"MISMATCH: {message}")
    sys.exit(1)


def read_signal_csv(path):
    """(labels, units, timestamps_ns, values[channel][sample]) of a csv_sink file."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    if header[0] != "timestamp_ns":
        fail(f"{path}: first column is {header[0]!r}")
    labels, units = [], []
    for name in header[1:]:
        if name.endswith("]") and " [" in name:
            label, unit = name[:-1].rsplit(" [", 1)
        else:
            label, unit = name, ""
        labels.append(label)
        units.append(unit)
    data = np.array([[float(x) for x in row] for row in rows[1:]], dtype=np.float64)
    stamps = np.array([int(row[0]) for row in rows[1:]], dtype=np.int64)
    return labels, units, stamps, data[:, 1:].T


def read_events_csv(path):
    """[(timestamp_ns, label)] of a csv_sink events file."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return [(int(r[0]), r[3]) for r in rows[1:]]


def unix_ns(dt):
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    delta = dt - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def step(pmin, pmax, dmin, dmax):
    # A file may invert a signal (physical minimum above maximum).
    return abs(pmax - pmin) / (dmax - dmin)


def close(name, ours, theirs, resolution):
    if ours.shape != theirs.shape:
        fail(f"{name}: {ours.shape[0]} samples from hsp, {theirs.shape[0]} from the peer")
    # Half a step of the format, and float32's rounding of the value.
    tolerance = resolution * 0.5 + np.abs(theirs) * 2.0**-23 + 1e-9
    worst = np.argmax(np.abs(ours - theirs) - tolerance)
    if np.abs(ours[worst] - theirs[worst]) > tolerance[worst]:
        fail(
            f"{name}: sample {worst}: hsp {ours[worst]!r}, peer {theirs[worst]!r} "
            f"(differ by {abs(ours[worst] - theirs[worst])}, allowed {tolerance[worst]})"
        )
    return float(np.max(np.abs(ours - theirs)))


def check_read(edf, signal_csvs, events_csv):
    import edfio
    import pyedflib

    reader = pyedflib.EdfReader(edf)
    labels = reader.getSignalLabels()
    header_second = unix_ns(reader.getStartdatetime().replace(microsecond=0))
    # edfio reads EDF only; BDF is checked against pyedflib alone.
    is_bdf = open(edf, "rb").read(1) == b"\xff"
    edfio_file = None if is_bdf else edfio.read_edf(edf)
    by_edfio = {} if is_bdf else {s.label: s for s in edfio_file.signals}
    start_edfio = None if is_bdf else unix_ns(datetime.datetime.combine(edfio_file.startdate, edfio_file.starttime))
    checked = 0
    worst = 0.0
    for path in signal_csvs:
        ours_labels, ours_units, stamps, values = read_signal_csv(path)
        # The first sample: the header's second (pyedflib) plus the first
        # record's sub-second onset (edfio reads it; pyedflib's
        # getStartdatetime divides it by 100 where 10 is meant).
        if stamps[0] != header_second + reader.starttime_subsecond * 100:
            fail(f"{path}: starts at {stamps[0]} ns, pyedflib says {header_second} + {reader.starttime_subsecond} x 100 ns")
        # edfio keeps the start to the microsecond.
        if start_edfio is not None and abs(int(stamps[0]) - start_edfio) >= 1000:
            fail(f"{path}: starts at {stamps[0]} ns, edfio says {start_edfio}")
        for c, label in enumerate(ours_labels):
            i = labels.index(label)
            if reader.getPhysicalDimension(i).strip() != ours_units[c]:
                fail(f"{label}: unit {ours_units[c]!r}, pyedflib {reader.getPhysicalDimension(i)!r}")
            resolution = step(
                reader.getPhysicalMinimum(i), reader.getPhysicalMaximum(i),
                reader.getDigitalMinimum(i), reader.getDigitalMaximum(i),
            )
            theirs = reader.readSignal(i)
            worst = max(worst, close(f"{label} (pyedflib)", values[c], theirs, resolution))
            if not is_bdf:
                close(f"{label} (edfio)", values[c], by_edfio[label].data, resolution)
            rate = reader.getSampleFrequency(i)
            expected = stamps[0] + round((len(theirs) - 1) * 1e9 / rate)
            if abs(int(stamps[-1]) - expected) > 1:
                fail(f"{label}: last sample stamped {stamps[-1]}, expected {expected}")
            checked += 1
    annotation_labels = ("EDF Annotations", "BDF Annotations")
    data_signals = sum(1 for label in labels if label not in annotation_labels)
    if checked != data_signals:
        fail(f"checked {checked} signals of {data_signals}")
    # Every peer gives onsets from the first sample (the header's second
    # plus the first record's sub-second onset); the file's TALs count from
    # the header's second. pyedflib keeps the sub-second in 100 ns units.
    start_pyedflib = header_second + reader.starttime_subsecond * 100
    onsets, durations, texts = reader.readAnnotations()
    ours = read_events_csv(events_csv)
    theirs = [(start_pyedflib + round(o * 1e9), t) for o, t in zip(onsets, texts)]
    # A plain EDF with an "EDF Annotations" signal: pyedflib reads it as a
    # signal, edfio and hsp as annotations (they are TALs all the same).
    plain_with_tals = reader.filetype in (pyedflib.FILETYPE_EDF, pyedflib.FILETYPE_BDF) and any(
        label in annotation_labels for label in labels
    )
    if not plain_with_tals and sorted(ours) != sorted(theirs):
        fail(f"annotations: hsp {ours[:5]}..., pyedflib {theirs[:5]}...")
    if edfio_file is not None:
        peer = sorted((start_edfio + round(a.onset * 1e9), a.text) for a in edfio_file.annotations)
        mine = sorted(ours)
        if len(peer) != len(mine) or any(
            abs(a - b) >= 1000 or x != y for (a, x), (b, y) in zip(peer, mine)
        ):
            fail(f"annotations: hsp {mine[:5]}..., edfio {peer[:5]}...")
    print(f"ok: {checked} signals, {len(ours)} annotations; largest difference {worst:.3g}")


def check_written(edf, reference_csv, events_csv):
    import edfio
    import mne
    import pyedflib

    labels, units, stamps, values = read_signal_csv(reference_csv)
    events = read_events_csv(events_csv)
    reader = pyedflib.EdfReader(edf)
    if reader.getSignalLabels() != labels:
        fail(f"labels: pyedflib {reader.getSignalLabels()}, sent {labels}")
    # The first sample's time, to the 100 ns TALs are written to.
    start = unix_ns(reader.getStartdatetime().replace(microsecond=0)) + reader.starttime_subsecond * 100
    if abs(start - int(stamps[0])) > 50:
        fail(f"start: pyedflib {start}, first sample sent {stamps[0]}")
    is_bdf = edf.lower().endswith(".bdf")
    # edfio reads EDF only.
    edfio_file = None if is_bdf else edfio.read_edf(edf)
    if edfio_file is not None:
        start_edfio = unix_ns(datetime.datetime.combine(edfio_file.startdate, edfio_file.starttime))
        if abs(start_edfio - int(stamps[0])) > 1000:  # edfio keeps microseconds
            fail(f"start: edfio {start_edfio}, first sample sent {stamps[0]}")
    raw = (mne.io.read_raw_bdf if is_bdf else mne.io.read_raw_edf)(edf, preload=True, verbose="error")
    if raw.ch_names != labels:
        fail(f"labels: MNE {raw.ch_names}, sent {labels}")
    mne_data = raw.get_data()
    n = values.shape[1]
    for c, label in enumerate(labels):
        if reader.getPhysicalDimension(c) != units[c]:
            fail(f"{label}: unit {reader.getPhysicalDimension(c)!r} in the file, {units[c]!r} sent")
        resolution = step(
            reader.getPhysicalMinimum(c), reader.getPhysicalMaximum(c),
            reader.getDigitalMinimum(c), reader.getDigitalMaximum(c),
        )
        theirs = reader.readSignal(c)
        # The last record is completed with zeros after the stream's end.
        if np.any(np.abs(theirs[n:]) > resolution / 2):
            fail(f"{label}: padding after sample {n} is not zero")
        close(f"{label} (pyedflib)", theirs[:n], values[c], resolution)
        if edfio_file is not None:
            signal = edfio_file.signals[c]
            if signal.physical_dimension != units[c]:
                fail(f"{label}: edfio unit {signal.physical_dimension!r}")
            close(f"{label} (edfio)", signal.data[:n], values[c], resolution)
        scale = {"uV": 1e6, "mV": 1e3, "V": 1.0}.get(units[c], 1.0)
        close(f"{label} (MNE)", mne_data[c, :n] * scale, values[c], resolution)
    def same(name, peer, tolerance_ns):
        sent = sorted(events)
        if len(peer) != len(sent) or any(
            abs(a - b) > tolerance_ns or x != y for (a, x), (b, y) in zip(sorted(peer), sent)
        ):
            fail(f"annotations: {name} {sorted(peer)[:5]}, sent {sent[:5]}")

    # Onsets from the first sample; written to 100 ns.
    onsets, durations, texts = reader.readAnnotations()
    same("pyedflib", [(start + round(o * 1e9), t) for o, t in zip(onsets, texts)], 100)
    if edfio_file is not None:
        same("edfio", [(start + round(a.onset * 1e9), a.text) for a in edfio_file.annotations], 1000)
    # MNE keeps onsets as float seconds.
    same("MNE", [(start + round(o * 1e9), t) for o, t in zip(raw.annotations.onset, raw.annotations.description)], 1000)
    peers = "pyedflib and MNE (edfio reads no BDF)" if is_bdf else "pyedflib, edfio and MNE"
    print(f"ok: {len(labels)} channels x {n} samples, {len(events)} annotations, in {peers}")


def main(argv):
    if len(argv) >= 2 and argv[1] == "check-read":
        rest = argv[2:]
        split = rest.index("--events")
        check_read(rest[0], rest[1:split], rest[split + 1])
    elif len(argv) == 5 and argv[1] == "check-written":
        check_written(argv[2], argv[3], argv[4])
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv)
