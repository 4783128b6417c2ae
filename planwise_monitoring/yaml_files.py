"""Reading the plugin's YAML configuration files with errors that say where the problem is.

    raw = read_yaml("sla.yaml", "SLA file", SlaConfigError)
"""

from pathlib import Path
from typing import Any

import yaml


def read_yaml(path: str | Path, kind: str, error: type[Exception]) -> Any:
    """Parse ``path``; a missing file or bad YAML raises ``error`` naming the file, line and column."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise error(f"cannot read {kind} {path}: {exc.strerror or exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark:
            problem += f" ({context} that starts at line {context_mark.line + 1})"
        raise error(f"{kind} {path} is not valid YAML{where}: {problem}") from None
