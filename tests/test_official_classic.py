"""benchmarks/official/classic_octave.py without Octave: its one-line refusals and the generated table."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "official" / "classic_octave.py"


def _run(args, path_dirs, tmp_path):
    env = {**os.environ, "PATH": os.pathsep.join(str(p) for p in path_dirs),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(SCRIPT), "--results", str(tmp_path / "results"),
                           "--work", str(tmp_path / "work"), *args], capture_output=True, text=True, env=env)


def test_missing_octave_is_one_line_and_exit_2(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    proc = _run([], [empty], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == "official: octave-cli not found; apt-get install octave octave-statistics\n"
    assert not (tmp_path / "results").exists() and not (tmp_path / "work").exists()


def test_missing_checkout_is_one_line_and_exit_2(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "octave-cli").write_text("#!/bin/sh\nexit 0\n")
    (fake / "octave-cli").chmod(0o755)
    proc = _run(["--code", str(tmp_path / "nowhere"), "--methods", "cvh"], [fake], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"official: {tmp_path / 'nowhere'} has no CVH/code/CVH_learn.m")
    assert "--code" in proc.stderr
    assert not (tmp_path / "work").exists()


def test_table_is_generated_from_the_json(tmp_path):
    """mean ± std over seeds per variant, the difference to the official mean, bold past 0.01, and the
    port-released codes' equal bits (mean over seeds)."""
    def entry(variant, seed, i2t, t2i, conv="per-modality"):
        return {"method": "cmfh", "dataset": "wiki", "bits": 16, "seed": seed, "variant": variant,
                "figures": {conv: {"i2t": {"mAP@all": i2t}, "t2i": {"mAP@all": t2i}}}}

    def agree(image_bits, image_share, text_bits, text_share):
        return {"image": {"identical_bits": image_bits, "mean_agreement": image_share},
                "text": {"identical_bits": text_bits, "mean_agreement": text_share}}

    data = {"about": {"datasets": {"wiki": {"n_train": 2173, "n_query": 693, "n_database": 2173,
                                            "split_hash": "aba48ca99394"}}},
            "entries": [entry("official", 0, 0.20, 0.30), entry("official", 1, 0.22, 0.30),
                        entry("port", 0, 0.21, 0.33), entry("port", 1, 0.21, 0.33),
                        {**entry("port-released", 0, 0.215, 0.301), "agreement": agree(10, 0.90, 12, 0.95)},
                        {**entry("port-released", 1, 0.205, 0.301), "agreement": agree(12, 1.0, 14, 0.97)},
                        {**entry("official", 0, 0, 0), "bits": 128, "figures": {}, "error": "octave: error: eigs"}]}
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "classic.json").write_text(json.dumps(data))
    proc = _run(["--table-only"], [], tmp_path)
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "results" / "classic.md").read_text()
    assert ("| cmfh | 16 | per-modality | I→T | 0.2100 ± 0.0100 (n=2) | 0.2100 ± 0.0000 (n=2) | +0.0000 "
            "| 0.2100 ± 0.0050 (n=2) | +0.0000 | 11 / 13 of 16 (0.950 / 0.960) |") in md
    assert "| cmfh | 16 | per-modality | T→I | 0.3000 ± 0.0000 (n=2) | 0.3300 ± 0.0000 (n=2) | **+0.0300** " in md
    assert "- wiki cmfh 16 bits, per-modality, T→I: port +0.0300\n" in md  # both sides constant: no error
    assert ("more than 0.01 mAP: port 1 of 2 rows; port with the released behaviour 0 of 2 rows; "
            "within 0.01 by neither 0.") in md
    assert "- wiki cmfh 128 bits, official: octave: error: eigs" in md
