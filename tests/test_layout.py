"""The package layout: stages import one way, and no module grows past a screenful of pages.

Every ``import``/``from`` in the package counts, including the ones inside functions
(made lazy for start-up time) and under ``TYPE_CHECKING``: each is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "newsletter"
#: The shared base: modules at the top of the package.
BASE = "base"
#: What each stage may import besides itself. The order of the pipeline, bottom up:
#: base < compose < delivery < audience < web < cli, with archive beside delivery.
ALLOWED: dict[str, set[str]] = {
    BASE: set(),
    "compose": {BASE},
    "delivery": {BASE, "compose"},
    "audience": {BASE, "compose", "delivery"},
    "archive": {BASE, "compose"},
    "reports": {BASE, "compose", "delivery", "audience"},
    "doctor": {BASE, "compose", "delivery", "audience", "reports"},
    "web": {BASE, "compose", "delivery", "audience", "archive", "reports"},
    "cli": {BASE, "compose", "delivery", "audience", "archive", "reports", "web", "doctor"},
}
MAX_LINES = 400


def layer_of(module: str) -> str:
    """The stage a dotted ``newsletter.*`` module belongs to."""
    parts = module.split(".")
    if len(parts) == 1:
        return BASE
    if parts[1] == "__main__":
        return "cli"
    return parts[1] if parts[1] in ALLOWED else BASE


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every ``newsletter`` module the file imports, with the line it does so on."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            # ``from newsletter import cli`` imports the submodule itself
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] == "newsletter"]


def package_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_layers_cover_every_package() -> None:
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert packages == set(ALLOWED) - {BASE}, "a new package needs a row in ALLOWED"


def test_every_package_says_what_it_owns_and_may_import() -> None:
    for init in PACKAGE.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc, f"{init.relative_to(ROOT)}: no docstring"
    for name in set(ALLOWED) - {BASE}:
        doc = ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text()))
        assert doc and "May import" in doc, f"newsletter/{name}/__init__.py: say what it may import"


def test_imports_never_run_back_up_a_layer() -> None:
    wrong: list[str] = []
    for path in package_files():
        own = layer_of(module_name(path))
        for line, name in imported_modules(path):
            target = layer_of(name)
            if target != own and target not in ALLOWED[own]:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {own} imports {name} ({target})")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from newsletter.web.app import create_app\n", "newsletter.web.app"),
        ("import newsletter.cli.app\n", "newsletter.cli.app"),
        ("def f():\n    from newsletter.archive import site\n", "newsletter.archive.site"),
    ],
)
def test_the_guard_sees_every_form_of_import(tmp_path: Path, source: str, expected: str) -> None:
    # The guard is only as good as its parser: lazy and plain imports are both seen.
    module = PACKAGE / "compose" / "_probe.py"
    try:
        module.write_text(source, encoding="utf-8")
        names = [name for _, name in imported_modules(module)]
    finally:
        module.unlink()
    assert expected in names
    assert layer_of(expected) not in ALLOWED["compose"]


def test_no_file_past_the_line_limit() -> None:
    roots = [PACKAGE, ROOT / "tests", ROOT / "bench"]
    long = [
        f"{path.relative_to(ROOT)}: {count} lines"
        for root in roots
        for path in sorted(root.rglob("*.py"))
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    ]
    assert not long, "split along a real seam:\n" + "\n".join(long)
