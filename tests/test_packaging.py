"""A non-editable install ships only the crossmodal package, with the configs and sweeps inside."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def build_tooling_missing() -> str | None:
    """Why a wheel cannot be built here at all, or None: pip or setuptools absent, or a setuptools
    older than 70.1 (no bdist_wheel of its own) without the ``wheel`` package."""
    import importlib.util
    from importlib.metadata import PackageNotFoundError, version

    missing = [m for m in ("pip", "setuptools") if importlib.util.find_spec(m) is None]
    if not missing:
        try:
            major, minor = (int(x) for x in version("setuptools").split(".")[:2])
        except (PackageNotFoundError, ValueError):
            major, minor = 0, 0
        if (major, minor) < (70, 1) and importlib.util.find_spec("wheel") is None:
            missing.append("wheel (setuptools < 70.1 needs it)")
    return f"no {' or '.join(missing)} in this Python: a wheel cannot be built here" if missing else None


@pytest.mark.slow
def test_wheel_installs_crossmodal_only_and_finds_its_configs(tmp_path):
    why = build_tooling_missing()
    if why:
        pytest.skip(why)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                        str(tmp_path / "whl"), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"the wheel build failed:\n{r.stderr[-3000:]}"
    wheel = next((tmp_path / "whl").glob("crossmodal-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"crossmodal"}  # no generic top-level experiments / data_prep packages
    configs = {Path(n).name for n in names if n.startswith("crossmodal/_configs/")}
    assert configs == {p.name for p in (ROOT / "experiments" / "configs").glob("*.yaml")}
    assert {Path(n).name for n in names if n.startswith("crossmodal/_sweeps/")} == \
        {p.name for p in (ROOT / "experiments" / "sweeps").glob("*.yaml")}
    # install into a fresh venv that sees the dependencies but not this checkout
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(tmp_path / "venv")], check=True)
    py = tmp_path / "venv" / "bin" / "python"
    # --ignore-installed: a crossmodal of the same version in the base Python must not count as installed
    subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=600)
    user = tmp_path / "user"
    (user / "experiments").mkdir(parents=True)  # a user's own experiments/ folder: it must not shadow anything
    (user / "experiments" / "__init__.py").write_text("MINE = True\n")
    code = ("import crossmodal, experiments, crossmodal.config as r, crossmodal.experiments.reproduce as rp; "
            "from crossmodal.config import load_config, preset_path; "
            f"assert crossmodal.__file__.startswith({str(tmp_path / 'venv')!r}), crossmodal.__file__; "
            "assert experiments.MINE; "
            "cfg, run = load_config(preset_path('ugach', 'fast'), 'wiki'); assert cfg['hidden'] == 256, cfg; "
            "assert rp.sweep_file('toy').is_file(); print(r.CONFIG_DIR)")
    out = subprocess.run([str(py), "-c", code], cwd=user, capture_output=True, text=True, timeout=300,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("crossmodal/_configs")
