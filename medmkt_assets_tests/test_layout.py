"""The library's layout is its architecture: packages in layers, imports one way, rooms a reader can hold."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from medmkt_assets.lib import LAYERS

LIB = Path(__file__).resolve().parents[1] / "medmkt_assets" / "lib"
MAX_CLASS_LINES = 210
MAX_FUNCTION_LINES = 65


def _modules(lib: Path = LIB) -> list[Path]:
    return sorted(p for p in lib.rglob("*.py") if p != lib / "__init__.py")


def _imports(lib: Path, path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a lib module, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = ["medmkt_assets", "lib", *path.relative_to(lib).with_suffix("").parts]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[:-node.level] + ([base] if base else []))
            found.append((node.lineno, base))
            if base == "medmkt_assets.lib":  # from medmkt_assets.lib import models
                found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def layer_violations(lib: Path) -> list[str]:
    """Every import in `lib` that goes against lib.LAYERS, or out of the pure library."""
    wrong = []
    for path in _modules(lib):
        mine = path.relative_to(lib).parts[0]
        for line, name in _imports(lib, path):
            where = f"lib/{path.relative_to(lib)}:{line} imports {name}"
            parts = name.split(".")
            if parts[0] == "dagster" or parts[:2] in (["medmkt_assets", "defs"], ["medmkt_assets", "app"]):
                wrong.append(f"{where} (lib/ is pure: no Dagster, no defs, no app)")
            if parts[:2] == ["medmkt_assets", "lib"] and len(parts) > 2:
                other = parts[2]
                if other not in LAYERS:
                    wrong.append(f"{where} (not a lib package)")
                elif other != mine and LAYERS[other] >= LAYERS[mine]:
                    wrong.append(f"{where} ({mine}, layer {LAYERS[mine]}, may not import {other}, "
                                 f"layer {LAYERS[other]})")
    return wrong


def test_every_module_lives_in_a_layered_package():
    loose = [p.name for p in LIB.glob("*.py") if p.name != "__init__.py"]
    assert not loose, f"modules directly under lib/ (put each in a package): {loose}"
    packages = {p.name for p in LIB.iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert packages == set(LAYERS), "packages without a layer in lib.LAYERS, or layers without a package"


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_each_package_says_what_lives_there_and_what_it_may_import(package):
    doc = ast.get_docstring(ast.parse((LIB / package / "__init__.py").read_text(encoding="utf-8")))
    assert doc and "May import:" in doc, f"lib/{package}/__init__.py needs a docstring ending in 'May import: ...'"


def test_imports_go_one_way():
    wrong = layer_violations(LIB)
    assert not wrong, "\n".join(wrong)


def test_the_rule_catches_upward_relative_and_impure_imports(tmp_path):
    lib = tmp_path / "lib"
    (lib / "engine").mkdir(parents=True)
    (lib / "privacy").mkdir()
    (lib / "engine" / "bad.py").write_text("from medmkt_assets.lib.models import rules\nfrom ..privacy import x\n")
    (lib / "privacy" / "ok.py").write_text("from medmkt_assets.lib.engine import sql\nfrom . import suppression\n")
    (lib / "privacy" / "impure.py").write_text("import dagster as dg\nfrom medmkt_assets.defs import resources\n")
    wrong = layer_violations(lib)
    assert len(wrong) == 4, wrong
    assert any("bad.py:1" in w and "may not import models" in w for w in wrong)
    assert any("bad.py:2" in w and "may not import privacy" in w for w in wrong)
    assert sum("impure.py" in w for w in wrong) == 2


def test_no_room_too_large_to_live_in():
    large = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            size = getattr(node, "end_lineno", 0) - getattr(node, "lineno", 0) + 1
            if isinstance(node, ast.ClassDef) and size > MAX_CLASS_LINES:
                large.append(f"class {node.name} in {path.relative_to(LIB)}: {size} lines")
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and size > MAX_FUNCTION_LINES:
                large.append(f"function {node.name} in {path.relative_to(LIB)}: {size} lines")
    assert not large, "split these:\n" + "\n".join(large)
