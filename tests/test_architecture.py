"""Which parts of rig may import which: data flows one way, and the engines, the trainers and the
show stay apart. Read from the source (every import statement, at any depth), not from a run."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

RIG = Path(__file__).resolve().parents[1] / "rig"


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names; ``from x import y`` gives x and x.y)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def modules(folder: str) -> list[Path]:
    root = RIG / folder
    return sorted(root.rglob("*.py")) if root.is_dir() else [RIG / f"{folder}.py"]


def offenders(folder: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    for path in modules(folder):
        bad = sorted(n for n in imports_of(path) if n.startswith(forbidden))
        if bad:
            found[str(path.relative_to(RIG))] = bad
    return found


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("engines", ("rig.train", "rig.ui", "rig.session", "rig.show", "rig.testing")),
        ("train", ("rig.engines", "rig.ui", "rig.session", "rig.show")),
        ("nn", ("rig.engines", "rig.train", "rig.ui", "rig.session")),
        ("synthesis", ("rig.engines", "rig.train")),
        ("compute", ("rig.engines", "rig.train")),
        ("mix", ("rig.engines", "rig.train")),
        ("adapters", ("rig.engines", "rig.train")),
        ("loop_model", ("rig.engines", "rig.train")),
        ("release", ("rig.engines", "rig.train", "torch")),
        ("session", ("rig.ui", "rig.show", "rig.testing")),
        ("link", ("rig.engines", "rig.session", "rig.ui", "torch")),
        ("ui", ("rig.train", "rig.testing", "torch")),
        ("evolve", ("rig.ui", "rig.show", "rig.train", "torch")),
        (
            "remote",
            (
                "rig.engines",
                "rig.session",
                "rig.ui.app",
                "rig.ui.server",
                "rig.train",
                "rig.show",
                "rig.performance",
                "torch",
                "gradio",
            ),
        ),
    ],
)
def test_import_direction(folder: str, forbidden: tuple[str, ...]) -> None:
    assert offenders(folder, forbidden) == {}


def test_the_imports_are_read_at_any_depth(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from rig.train import gan\n    import torch.nn\n")
    assert imports_of(module) == {"rig.train", "rig.train.gan", "torch.nn"}
