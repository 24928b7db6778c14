"""The import graph of src/imgpipe, read from the source (lazy imports inside functions too):
no cycle, and nothing below the CLI imports it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import imgpipe

SRC = Path(imgpipe.__file__).parent


def _module(path: Path) -> str:
    parts = ["imgpipe", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target.startswith("imgpipe"):
                    edges.add(target)
        graph[name] = edges
    return graph


def test_no_import_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}  # 1 visiting, 2 done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            # a package's own __init__ re-exporting its modules is not a cycle in practice
            if node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert cycles == []


def test_nothing_below_the_cli_imports_it() -> None:
    upward = {
        (name, target)
        for name, targets in _graph().items()
        if not name.startswith("imgpipe.cli")
        for target in targets
        if target.startswith("imgpipe.cli")
    }
    assert upward == set()


BUILT_IN_BOOTSTRAP = (
    "Catalog",
    "ObjectStore",
    "Presigned",
    "SqsQueues",
    "QueueSender",
    "Notifier",
    "Pipeline",
    "StatusApi",
    "Reconciler",
    "Backfill",
)


def test_handlers_build_no_object_graph_of_their_own() -> None:
    """Each handler takes what it runs from bootstrap.py, which builds it on the AWS adapters
    (tests build the same objects on the in-memory doubles of ports.py)."""
    built = []
    for path in sorted((SRC / "handlers").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute):
                name = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
                if name in BUILT_IN_BOOTSTRAP:
                    built.append(f"{path.name}: {name}(...)")
    assert built == []


def test_untyped_dicts_stay_at_the_json_boundary() -> None:
    """``dict[str, Any]``/``dict[str, object]`` only where JSON arrives unchecked (the
    ``codec.Received`` alias, used at Lambda events, SQS bodies, claims), in codec's own
    reflection, for ASGI's scope and messages in the local stack's guard (a protocol made of
    dicts, served by MiniStack), and for the OpenAPI document contract.py writes out (JSON
    Schema is itself JSON): requests, answers and checkpoints have types of their own."""
    pattern = re.compile(r"dict\[str, (Any|object)\]")
    found = [
        f"{path.relative_to(SRC)}:{number}"
        for path in sorted(SRC.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert len(found) <= 10, found
    boundaries = {"codec.py", "local/ministack_guard.py", "contract.py"}
    assert {f.split(":")[0] for f in found} <= boundaries, found


def test_the_pipeline_carries_out_decisions_and_makes_none_of_its_own() -> None:
    """ordering.py owns versions and the per-key rules; pipeline.py stays small."""
    source = (SRC / "pipeline.py").read_text()
    assert len(source.splitlines()) < 250
    for rule in ("sequencer", '"s:"', '"b:"', "supersedes", "~r", ".version <", "version_id"):
        assert rule not in source, rule
