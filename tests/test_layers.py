"""The shape of the package: no module over 400 lines, no private name used across modules
(an AST scan of every module), and the import-linter contracts of setup.cfg (`lint-imports`)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "crossmodal"
MAX_LINES = 400


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def dotted(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    """``crossmodal.a.b`` names a module or package of this checkout."""
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def absolute(module: str | None, level: int, package: str) -> str:
    """The absolute name of ``from <level dots><module> import ...`` written in ``package``."""
    if level == 0:
        return module or ""
    base = package.split(".")[: len(package.split(".")) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def chain(node: ast.Attribute) -> list[str] | None:
    """``a.b.c`` -> ``["a", "b", "c"]``; None when the chain does not start at a plain name."""
    out = []
    while isinstance(node, ast.Attribute):
        out.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(out)]


def private_uses(path: Path) -> list[str]:
    """``from crossmodal.x import _name``, and ``x._name`` on a crossmodal module ``x``, in one
    module (private modules are allowed inside their own package)."""
    me = dotted(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    where = path.relative_to(ROOT)
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    bound: dict[str, str] = {}  # local name -> the crossmodal module it is bound to
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "crossmodal":
                    bound[a.asname or "crossmodal"] = a.name if a.asname else "crossmodal"
        elif isinstance(node, ast.ImportFrom):
            base = absolute(node.module, node.level, package)
            if base.split(".")[0] != "crossmodal":
                continue
            for a in node.names:
                target = f"{base}.{a.name}"
                if is_module(target):
                    bound[a.asname or a.name] = target
                    inside = me == base or me.startswith(f"{base}.")
                    if is_private(a.name) and not inside:
                        found.append(f"{where}:{node.lineno}: private module {target} imported outside {base}")
                elif is_private(a.name):
                    found.append(f"{where}:{node.lineno}: from {base} import {a.name}")
    for node in ast.walk(tree):
        names = chain(node) if isinstance(node, ast.Attribute) else None
        if not names or names[0] not in bound:
            continue
        module = bound[names[0]]
        for attr in names[1:]:
            if is_module(f"{module}.{attr}"):
                module = f"{module}.{attr}"
                continue
            if is_private(attr) and module != me:
                found.append(f"{where}:{node.lineno}: {module}.{attr}")
            break
    return found


def test_no_module_over_400_lines():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines()) for p in modules()}
    over = sorted((n, p) for p, n in sizes.items() if n > MAX_LINES)
    assert not over, f"{len(over)} modules over {MAX_LINES} lines: " + ", ".join(f"{p} ({n})" for n, p in over[::-1])


def test_no_private_name_used_across_modules():
    found = sorted({use for p in modules() for use in private_uses(p)})
    assert not found, "private names used across modules (make them public):\n" + "\n".join(found)


def test_the_private_name_scan_finds_each_form(tmp_path, monkeypatch):
    """The scan itself, on a tiny package laid out like crossmodal."""
    pkg = tmp_path / "crossmodal"
    (pkg / "sub").mkdir(parents=True)
    for f in ("__init__.py", "engine.py", "sub/__init__.py", "sub/_kern.py"):
        (pkg / f).write_text("")
    (pkg / "sub" / "user.py").write_text("from crossmodal.sub import _kern\nfrom . import _kern as k\n")
    (pkg / "bad.py").write_text(
        "from crossmodal.engine import _pid, public\n"
        "from .engine import _other\n"
        "import crossmodal.engine as eng\n"
        "from crossmodal import engine\n"
        "from crossmodal.sub import _kern\n"
        "def f():\n"
        "    return eng._lock, engine.public, engine.__name__, crossmodal_free._x\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)  # the scan resolves module names under ROOT
    assert private_uses(pkg / "sub" / "user.py") == []  # a private module inside its package
    found = private_uses(pkg / "bad.py")
    assert [f.split(": ", 1)[1] for f in found] == [
        "from crossmodal.engine import _pid", "from crossmodal.engine import _other",
        "private module crossmodal.sub._kern imported outside crossmodal.sub", "crossmodal.engine._lock"]


def test_import_linter_contracts_pass():
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed (pip install import-linter): the layer contracts are not checked")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    r = subprocess.run([exe, "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"lint-imports: broken contracts\n{r.stdout[-6000:]}{r.stderr[-2000:]}"
