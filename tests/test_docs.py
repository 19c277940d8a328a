"""Every hook is documented, tested and described: the docs cannot fall behind the contract."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from platform_core import hookspecs

ROOT = Path(__file__).resolve().parent.parent
HOOKS_DOC = ROOT / "docs" / "plugin-hooks.md"
GUIDE = ROOT / "docs" / "plugin-guide.md"
HOOK_TESTS = ROOT / "tests" / "test_hooks.py"


def _hookspecs() -> dict[str, object]:
    return {
        name: obj
        for name, obj in vars(hookspecs).items()
        if callable(obj) and getattr(obj, "platform_core_spec", None) is not None
    }


HOOKS = sorted(_hookspecs())


def _sections() -> dict[str, str]:
    """``## <heading>`` sections of the hook reference, by heading."""
    parts = re.split(r"^## (\S+)\s*$", HOOKS_DOC.read_text(encoding="utf-8"), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _test_functions() -> set[str]:
    tree = ast.parse(HOOK_TESTS.read_text(encoding="utf-8"))
    return {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def test_hookspecs_are_found_by_their_marker():
    assert {"platform_plugin_meta", "platform_routes", "platform_add_hookspecs"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented_with_heading_and_signature(hook):
    sections = _sections()
    assert hook in sections, f"docs/plugin-hooks.md has no '## {hook}' heading"
    assert f"def {hook}(" in sections[hook], f"the '## {hook}' section shows no signature"


def test_hook_reference_documents_no_unknown_hook():
    unknown = sorted(h for h in _sections() if h.startswith("platform_") and h not in HOOKS)
    assert unknown == []


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_test_in_test_hooks(hook):
    assert f"test_hook_{hook}" in _test_functions(), f"tests/test_hooks.py lacks test_hook_{hook}"


@pytest.mark.parametrize("hook", HOOKS)
def test_hookspec_has_docstring(hook):
    doc = inspect.getdoc(_hookspecs()[hook])
    assert doc and doc.strip(), f"hookspec {hook} has no docstring"


@pytest.mark.parametrize("hook", HOOKS)
def test_plugin_guide_mentions_hook(hook):
    assert re.search(rf"\b{hook}\b", GUIDE.read_text(encoding="utf-8")), (
        f"docs/plugin-guide.md never mentions {hook}"
    )
