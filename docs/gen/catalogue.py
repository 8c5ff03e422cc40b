"""The method catalogue, generated from the code at build time: one page per registered method.

Every figure on these pages is read from the method classes (``cls.params``: name, type,
default, check via ``Param.describe()``, help) and from the preset files
``experiments/configs/METHOD[-PRESET].yaml``; nothing is typed by hand.
"""

from __future__ import annotations

from pathlib import Path

import yaml

UNSET = object()


def _config_api():
    """``(CONFIG_DIR, presets_of, preset_path, load_config_file)`` from the config layer."""
    from crossmodal.config import CONFIG_DIR, load_config_file, preset_path, presets_of

    return CONFIG_DIR, presets_of, preset_path, load_config_file


def cell(text: str) -> str:
    """Text for a Markdown table cell: pipes escaped, newlines folded."""
    return " ".join(str(text).split()).replace("|", "\\|")


def code(text: str) -> str:
    """A code span for a table cell (pipes inside code spans need no escape)."""
    return f"`{text}`" if str(text) != "" else ""


def kind(cls) -> str:
    return "image-only" if tuple(cls.modalities) == ("image",) else "cross-modal"


def summary(cls) -> str:
    doc = (cls.__doc__ or "").strip().splitlines()
    return doc[0].strip() if doc else cls.__name__


def dataset_names(config_dir: Path) -> list[str]:
    """Every dataset named under ``datasets:`` in any shipped config file."""
    names: set[str] = set()
    for f in sorted(config_dir.glob("*.yaml")):
        blocks = (yaml.safe_load(f.read_text(encoding="utf-8")) or {}).get("datasets") or {}
        names.update(str(k) for k in blocks)
    return sorted(names)


class Catalogue:
    """Pages of every registered method; ``pages()`` maps a path under ``methods/catalogue/``
    to its Markdown."""

    def __init__(self):
        from crossmodal.methods import available_methods, get_method

        config_dir, self.presets_of, self.preset_path, self.load_config_file = _config_api()
        self.classes = {name: get_method(name) for name in available_methods()}
        self.datasets = dataset_names(Path(config_dir))

    def pages(self) -> dict[str, str]:
        out = {"index.md": self.index()}
        for name, cls in self.classes.items():
            out[f"{name}.md"] = self.page(name, cls)
        return out

    def index(self) -> str:
        lines = ["# Method catalogue", "",
                 "Generated at build time from each registered method's declared parameters "
                 "(`params`) and its preset files in `experiments/configs/`. "
                 "`crossmodal methods NAME` prints the same keys in a terminal.", "",
                 "| method | kind | summary | presets |", "|---|---|---|---|"]
        for name, cls in self.classes.items():
            flags = [kind(cls)] + (["supervised"] if cls.uses_labels else []) + \
                    (["unified pair codes"] if cls.unified_codes else [])
            presets = ", ".join(f"[{p}]({name}.md#preset-{p})" for p in self.presets_of(name)) or "none"
            lines.append(f"| [`{name}`]({name}.md) | {', '.join(flags)} | {cell(summary(cls))} | {presets} |")
        return "\n".join(lines) + "\n"

    def page(self, name: str, cls) -> str:
        presets = self.presets_of(name)
        facts = [("class", code(f"{cls.__module__}.{cls.__qualname__}")),
                 ("modalities", ", ".join(cls.modalities)),
                 ("uses labels", "yes (supervised)" if cls.uses_labels else "no"),
                 ("unified pair codes", "yes (`--database-codes unified`)" if cls.unified_codes else "no"),
                 ("presets", ", ".join(f"[{p}](#preset-{p})" for p in presets) or "none")]
        lines = [f"# {name}", "", cell(summary(cls)), "", "| | |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in facts]
        lines += ["", "## Config keys", ""]
        lines += self.keys_table(cls)
        for preset in presets:
            lines += ["", *self.preset_section(name, cls, preset)]
        lines += ["", "## Module documentation", "",
                  "The docstring of the module that defines the method (sources, algorithm, departures):", "",
                  f"::: {cls.__module__}", "    options:", "      members: false",
                  "      show_root_heading: false", "      show_root_toc_entry: false", ""]
        return "\n".join(lines)

    def keys_table(self, cls) -> list[str]:
        if not cls.params:
            return ["This method has no config keys."]
        rows = ["| key | type | default | allowed | meaning |", "|---|---|---|---|---|"]
        for p in cls.params:
            kind_, default, check = p.describe()
            rows.append(f"| `{p.name}` | {kind_} | {code(default)} | {code(check)} | {cell(p.help)} |")
        return rows

    def preset_section(self, name: str, cls, preset: str) -> list[str]:
        path = self.preset_path(name, preset)
        raw = path.read_text(encoding="utf-8")
        desc = (yaml.safe_load(raw) or {}).get("description", "")
        base = self.load_config_file(path, "", name)
        lines = [f"## Preset `{preset}` {{#preset-{preset}}}", "",
                 f"`--preset {preset}` loads `experiments/configs/{path.name}`"
                 + (f": {cell(desc)}" if desc else "") + ".", ""]
        changed = [(k, v) for k, v in base.items() if cls.defaults.get(k, UNSET) != v]
        if changed:
            lines += ["Keys whose value differs from the class default (the default is what "
                      "`crossmodal train` uses without `--preset` or `--config`):", "",
                      "| key | class default | preset |", "|---|---|---|"]
            lines += [f"| `{k}` | {code(repr(cls.defaults.get(k)))} | {code(repr(v))} |" for k, v in changed]
        else:
            lines.append("Every key of this preset equals the class default.")
        per_dataset = []
        for ds in self.datasets:
            cfg = self.load_config_file(path, ds, name)
            per_dataset += [(ds, k, base.get(k, cls.defaults.get(k)), v) for k, v in cfg.items()
                            if base.get(k, cls.defaults.get(k)) != v]
        if per_dataset:
            lines += ["", "Per-dataset values (`datasets:` blocks), on top of the above:", "",
                      "| dataset | key | above | for this dataset |", "|---|---|---|---|"]
            lines += [f"| {ds} | `{k}` | {code(repr(old))} | {code(repr(new))} |" for ds, k, old, new in per_dataset]
        lines += ["", f'??? note "{path.name} (the file, with the source of each value)"', "",
                  "    ```yaml"]
        lines += [f"    {line}".rstrip() for line in raw.splitlines()]
        lines += ["    ```"]
        return lines

