"""The maps stay true: the README's layout block names only paths that exist and mentions every
source folder; the docs cite only tests (and test functions) that exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

SRC = ROOT / "src" / "imgpipe"
# a path-like word: has a slash, or ends in a file extension we keep in the repository
_WORD = re.compile(r"\.?[A-Za-z0-9_+-]+(?:[./][A-Za-z0-9_+-]+)*/?")
_FILE = re.compile(r"\.(py|ya?ml|json|toml|txt|html|md)$")


def _layout_block(readme: str) -> list[str]:
    section = readme.split("\n## Layout", 1)[1]
    return section.split("```", 2)[1].strip("\n").splitlines()


def layout_paths(readme: str) -> list[Path]:
    """Every path the layout names, resolved as a reader reads it: a word with a slash whose
    first part is at the top of the repository ("tests/hostile/") is from the top; a folder that
    opens a line ("src/imgpipe/", "imaging/") holds what that line lists after it, the lines
    that continue it (indented further) and, for a top-level folder, the lines indented by
    two below it."""
    top = {p.name for p in ROOT.iterdir()}
    paths: list[Path] = []
    parent = current = ROOT
    for line in _layout_block(readme):
        indent = len(line) - len(line.lstrip())
        words = [w.rstrip(":,;") for w in _WORD.findall(line)]
        words = [w for w in words if "/" in w or _FILE.search(w)]
        if not words:
            continue
        if indent <= 2:
            base = ROOT if indent == 0 else parent
            current = base / words[0] if words[0].endswith("/") else base
            if indent == 0:
                parent = current
        for index, word in enumerate(words):
            if "/" in word and word.split("/")[0] in top:
                paths.append(ROOT / word)
            elif index == 0 and indent <= 2 and word.endswith("/"):
                paths.append(current)
            else:
                paths.append(current / word)
    return paths


def source_folders() -> set[Path]:
    found = {p.parent for p in SRC.rglob("*.py")} | {p for p in SRC.rglob("*") if p.is_dir()}
    return {p for p in found if "__pycache__" not in p.parts and p != SRC}


def code_folders() -> set[Path]:
    """The repository's top-level folders of code and configuration (and tests' parts)."""
    top = {ROOT / n for n in ("bench", "resources", "scripts", "docs")}
    return top | {p for p in (ROOT / "tests").iterdir() if p.is_dir() and p.name != "__pycache__"}


def test_the_layout_names_only_paths_that_exist() -> None:
    paths = layout_paths((ROOT / "README.md").read_text())
    assert len(paths) > 30
    missing = sorted(str(p.relative_to(ROOT)) for p in paths if not p.exists())
    assert missing == [], f"the README's layout names paths that do not exist: {missing}"


def test_the_layout_mentions_every_source_folder() -> None:
    named = set(layout_paths((ROOT / "README.md").read_text()))
    unmentioned = sorted(
        str(f.relative_to(ROOT)) for f in source_folders() | code_folders() if f not in named
    )
    assert unmentioned == [], f"folders the README's layout does not mention: {unmentioned}"


def test_the_layout_check_catches_a_broken_path() -> None:
    readme = (ROOT / "README.md").read_text()
    broken = readme.replace("pipeline.py", "pipeline_gone.py", 1)
    assert any(not p.exists() for p in layout_paths(broken))
    without = readme.replace("handlers/", "entries/", 1)
    assert SRC / "handlers" not in set(layout_paths(without))


_TEST_REF = re.compile(r"(tests/[A-Za-z0-9_/]+\.py)(?:::([A-Za-z0-9_]+))?")


def doc_references() -> list[tuple[str, str, str]]:
    """(document, test file, test name or "") for every tests/... reference in the docs."""
    found = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for path, name in _TEST_REF.findall(doc.read_text()):
            found.append((doc.name, path, name))
    return found


def _defined(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)}


@pytest.mark.parametrize(
    ("doc", "path", "name"), doc_references(), ids=[f"{d}:{p}" for d, p, _ in doc_references()]
)
def test_docs_cite_tests_that_exist(doc: str, path: str, name: str) -> None:
    assert (ROOT / path).is_file(), f"{doc} cites {path}, which does not exist"
    if name:
        assert name in _defined(ROOT / path), f"{doc} cites {path}::{name}, which does not exist"


def test_the_docs_cite_tests_at_all() -> None:
    assert len(doc_references()) >= 20
