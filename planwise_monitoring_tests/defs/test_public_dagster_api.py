"""The package uses Dagster through its public API only: private modules and private methods of
Dagster objects move between minor releases without notice."""

from __future__ import annotations

import re
from pathlib import Path

import planwise_monitoring

PACKAGE = Path(planwise_monitoring.__file__).parent

# `dagster._core...`, `dagster_dbt._...`: any private module of Dagster or its integrations
PRIVATE_MODULE = re.compile(r"\bdagster\w*\._\w+")
# e.g. MaterializeResult._replace(...): a NamedTuple internal of a Dagster object
PRIVATE_REPLACE = re.compile(r"\._replace\(")
# The one `._replace(` that is not on a Dagster object: urllib.parse.urlsplit's result is a plain
# namedtuple, whose `_replace` is documented public API (the underscore only avoids field names).
NOT_DAGSTER = {("redaction.py", 'found.add(url._replace(query="", fragment="").geturl())')}


def offending_lines(package: Path) -> list[str]:
    found = []
    for module in sorted(package.rglob("*.py")):
        name = module.relative_to(package).as_posix()
        for number, line in enumerate(module.read_text().splitlines(), 1):
            if PRIVATE_MODULE.search(line) or (
                PRIVATE_REPLACE.search(line) and (name, line.strip()) not in NOT_DAGSTER
            ):
                found.append(f"{name}:{number}: {line.strip()}")
    return found


def test_no_private_dagster_api_in_the_package():
    offenders = offending_lines(PACKAGE)
    assert not offenders, "private Dagster API:\n" + "\n".join(offenders)


def test_the_search_finds_what_it_forbids(tmp_path):
    (tmp_path / "a.py").write_text(
        "from dagster._core.definitions import x\n"
        "import dagster_dbt._internal\n"
        "result = result._replace(metadata={})\n"
        "from dagster import AssetKey  # public: fine\n"
    )
    assert offending_lines(tmp_path) == [
        "a.py:1: from dagster._core.definitions import x",
        "a.py:2: import dagster_dbt._internal",
        "a.py:3: result = result._replace(metadata={})",
    ]
