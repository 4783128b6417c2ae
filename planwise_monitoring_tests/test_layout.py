"""The tree shows the data flow: packages import only from the stages before them."""

from __future__ import annotations

import ast
from pathlib import Path

import planwise_monitoring

PACKAGE = Path(planwise_monitoring.__file__).parent

# stage -> the stages (and shared top-level modules) it may import from; data flows
# measure -> record -> store -> evaluate / alert -> report -> Dagster glue
SHARED = {"redaction", "yaml_files", "events", "identity", "_deprecated", "clock"}
ALLOWED = {
    "recording": SHARED,
    "store": SHARED | {"recording"},
    "evaluation": SHARED | {"recording", "store", "alerting"},
    "alerting": SHARED | {"recording", "store"},
    "reporting": SHARED | {"recording", "store", "evaluation", "alerting"},
    "defs": SHARED | {"recording", "store", "evaluation", "alerting", "reporting"},
    "cli": SHARED | {"recording", "store", "reporting"},
}


def _stage(module: Path) -> str:
    return module.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imported_stages(module: Path) -> set[str]:
    tree = ast.parse(module.read_text())
    stages = set()
    depth = len(module.relative_to(PACKAGE).parts) - 1
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package root
                if node.level - 1 > depth:
                    continue
                parts = list(module.relative_to(PACKAGE).parts[: depth - (node.level - 1)])
                target = [*parts, *(node.module.split(".") if node.module else [])]
                if not target:  # "from .. import x": x is a stage
                    stages |= {alias.name for alias in node.names}
                else:
                    stages.add(target[0])
            elif node.module and node.module.startswith("planwise_monitoring."):
                stages.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            stages |= {a.name.split(".")[1] for a in node.names if a.name.startswith("planwise_monitoring.")}
    return stages


def test_packages_import_only_from_earlier_stages():
    wrong = []
    for module in sorted(PACKAGE.rglob("*.py")):
        stage = _stage(module)
        if stage not in ALLOWED:
            continue  # the package __init__, the demo
        for imported in sorted(_imported_stages(module) - {stage} - ALLOWED[stage]):
            wrong.append(f"{module.relative_to(PACKAGE)} imports from {imported}")
    assert not wrong, "imports against the data flow:\n" + "\n".join(wrong)


def test_each_package_opens_with_a_docstring():
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc.splitlines()) >= 2, f"{init.relative_to(PACKAGE)} needs a two-line docstring"


def test_only_the_store_holds_sql_on_mon_tables():
    offenders = []
    for module in sorted(PACKAGE.rglob("*.py")):
        if _stage(module) in {"store", "demo"}:
            continue
        tree = ast.parse(module.read_text())
        docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                text = " ".join(node.value.upper().split())
                if any(f"{verb} MON_" in text for verb in ("FROM", "INTO", "UPDATE", "TABLE", "JOIN")):
                    offenders.append(f"{module.relative_to(PACKAGE)}:{node.lineno}")
    assert not offenders, "SQL on mon_* outside store/: " + ", ".join(offenders)
