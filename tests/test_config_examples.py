"""Every configuration example in the docs and the shipped plugins.toml loads as written.

Each ```toml block of the docs that holds ``[core]`` or ``[plugins]`` tables is loaded with
``load_config``; when it sets the tables of installed plugins, the platform is booted with
them enabled and none may be isolated (a misspelled setting isolates its plugin). The
commented examples of ``plugins.toml`` are uncommented and loaded the same way.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from platform_core.app import boot
from platform_core.config import load_config
from platform_core.manager import discover

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted(
    [
        *ROOT.glob("docs/*.md"),
        ROOT / "README.md",
        *ROOT.glob("plugins/*/README.md"),
        ROOT / "tests" / "example_plugin" / "README.md",
    ]
)
BLOCK = re.compile(r"^```toml\n(.*?)^```", re.S | re.M)
COMMENTED = re.compile(r"^# ?((?:\[[\w.\"-]+\])|(?:[\w-]+ = .+))$")


def _config_blocks() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for number, match in enumerate(BLOCK.finditer(text), 1):
            block = match.group(1)
            if re.search(r"^\[(core|plugins)[\].]", block, re.M):
                found.append((f"{doc.relative_to(ROOT)}#{number}", block))
    return found


def _uncommented(path: Path) -> str:
    """The file with its commented-out settings and table headers switched on."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = COMMENTED.match(line)
        lines.append(match.group(1) if match else line)
    return "\n".join(lines) + "\n"


EXAMPLES = [
    *_config_blocks(),
    ("plugins.toml", (ROOT / "plugins.toml").read_text(encoding="utf-8")),
    ("plugins.toml (commented examples on)", _uncommented(ROOT / "plugins.toml")),
]


def test_the_docs_hold_config_examples_to_check():
    names = {name.split("#")[0] for name, _ in EXAMPLES}
    assert {"docs/operations.md", "docs/jobs.md", "docs/webhooks.md", "plugins.toml"} <= names
    assert any("[plugins.inventory]" in text for _, text in EXAMPLES)


@pytest.mark.parametrize(("name", "text"), EXAMPLES, ids=[name for name, _ in EXAMPLES])
def test_config_example_loads_and_isolates_no_plugin(name, text, tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith("PLATFORM_")]:
        monkeypatch.delenv(key)
    path = tmp_path / "plugins.toml"
    path.write_text(text, encoding="utf-8")
    cfg = load_config(path)
    installed = set(discover())
    tables = {n for n in cfg.plugin_tables if n in installed}
    if not tables:
        return
    cfg.enabled = sorted((set(cfg.enabled) & installed) | tables)
    cfg.core.strict = False
    ctx = boot(cfg)
    failed = {n: r for n, r in ctx.plugins.failures().items() if n in installed}
    assert failed == {}, f"{name}: {failed}"
