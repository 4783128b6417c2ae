"""Reading the plugin's YAML configuration files: refused fast, with errors that say where.

    from pathlib import Path
    from planwise_monitoring.yaml_files import read_yaml

    Path("sla.yaml").write_text("default: {sla_threshold_seconds: 300, warning_threshold_seconds: 240}\\n")
    assert read_yaml("sla.yaml", "SLA file", ValueError)["default"]["sla_threshold_seconds"] == 300

    Path("bad.yaml").write_text("default: {sla_threshold_seconds: .nan}\\n")
    try:
        read_yaml("bad.yaml", "SLA file", ValueError)
    except ValueError as exc:
        assert str(exc) == ("SLA file bad.yaml: default.sla_threshold_seconds (line 1): "
                            ".nan is not a finite number")

A configuration file is small, so anything a hand-written one never holds is refused before it
costs time or memory, with a message naming the file and the entry:

* files over ``max_bytes`` (default 1 MiB), checked before reading;
* aliases that expand to more than ``MAX_NODES`` values ("billion laughs": a 600-byte file whose
  anchors nest ten deep means 10⁹ values to whoever walks it) and recursive aliases; anchors and
  ``<<`` merges of ordinary size still work;
* a key written twice in one mapping (YAML would silently keep the last one);
* ``.nan``, ``.inf`` and floats that overflow to infinity (``1.0e999``): no threshold is NaN;
* nesting deeper than ``MAX_DEPTH``.

Quoted excerpts of the file are capped (:func:`excerpt`), so an error stays a line, not the file.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_BYTES = 1 << 20  # 1 MiB: a hand-written configuration is a few kilobytes
MAX_NODES = 100_000  # values after alias expansion
MAX_DEPTH = 64
EXCERPT_CHARS = 60

_FLOAT_TAG = "tag:yaml.org,2002:float"
_MERGE_TAG = "tag:yaml.org,2002:merge"


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """``repr(value)``, cut to ``limit`` characters: what an error message may quote of a value.

        assert excerpt("x" * 1000, 10) == "'xxxxxxxx…"
    """
    text = repr(value) if not isinstance(value, (list, dict, tuple, set)) else _short_repr(value, limit)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION = re.compile(rf"(?:{_DURATION_PART.pattern})+")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(value: Any, *, allow_zero: bool = True) -> float:
    """Seconds from a number or a string such as ``"90s"``, ``"30m"``, ``"1h30m"`` or ``"28d"``;
    ValueError (quoting at most an excerpt) for anything else.

        assert duration_seconds("1h30m") == 5400.0
    """
    seconds: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        elif _DURATION.fullmatch(text):
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    if seconds is None or not math.isfinite(seconds):
        raise ValueError(f"expected a duration such as 3600, \"90s\", \"30m\" or \"1h\", got {excerpt(value)}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError(f"must be {'>= 0' if allow_zero else '> 0'}, got {excerpt(value)}")
    return seconds


def _short_repr(value: Any, limit: int) -> str:
    # repr() of a shared, deeply nested structure can take gigabytes; a bounded walk cannot.
    out: list[str] = []
    size = 0

    def emit(text: str) -> bool:
        nonlocal size
        out.append(text)
        size += len(text)
        return size <= limit

    def walk(v: Any, depth: int) -> bool:
        if depth > 8:
            return emit("…")
        if isinstance(v, dict):
            if not emit("{"):
                return False
            for i, (k, item) in enumerate(v.items()):
                if (i and not emit(", ")) or not emit(f"{k!r}: ") or not walk(item, depth + 1):
                    return False
            return emit("}")
        if isinstance(v, (list, tuple, set)):
            if not emit("["):
                return False
            for i, item in enumerate(v):
                if (i and not emit(", ")) or not walk(item, depth + 1):
                    return False
            return emit("]")
        return emit(repr(v)[: limit + 1])

    walk(value, 0)
    return "".join(out)


class YamlRefused(Exception):
    """Internal: a check on the composed document failed; ``entry`` is where (``a.b[2]``)."""

    def __init__(self, entry: str, node: Node | None, problem: str):
        super().__init__(problem)
        self.entry, self.node, self.problem = entry, node, problem


def read_yaml(path: str | Path, kind: str, error: type[Exception], *, max_bytes: int = MAX_BYTES) -> Any:
    """Parse ``path``; any problem raises ``error`` naming the file, and the entry or line.

        from pathlib import Path
        Path("alerts.yaml").write_text("throttle: 1h\\nthrottle: 2h\\n")
        try:
            read_yaml("alerts.yaml", "alerts file", ValueError)
        except ValueError as exc:
            assert "throttle (line 2): the key 'throttle' is given twice" in str(exc)
    """
    path = Path(path)
    text = _read_text(path, kind, error, max_bytes)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            return None
        _check_expansion(node)
        _check_entries(node, "", 0, set())
        return yaml.SafeLoader(text).construct_document(node)
    except YamlRefused as exc:
        line = f" (line {exc.node.start_mark.line + 1})" if exc.node is not None else ""
        entry = exc.entry or "the document"
        raise error(f"{kind} {path}: {entry}{line}: {exc.problem}") from None
    except RecursionError:
        raise error(f"{kind} {path}: nested more than {MAX_DEPTH} levels deep") from None
    except yaml.YAMLError as exc:
        raise error(_describe_yaml_error(exc, kind, path)) from None


def _read_text(path: Path, kind: str, error: type[Exception], max_bytes: int) -> str:
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > max_bytes:
                raise error(f"{kind} {path} is {size:,} bytes; a configuration file may hold at most "
                            f"{max_bytes:,}")
            data = fh.read(max_bytes + 1)  # a pipe or a file still growing has no honest size
    except OSError as exc:
        raise error(f"cannot read {kind} {path}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise error(f"{kind} {path} holds more than {max_bytes:,} bytes; a configuration file may hold at most that")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{kind} {path} is not UTF-8 text (byte {exc.start})") from None


def _describe_yaml_error(exc: yaml.YAMLError, kind: str, path: Path) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and context_mark:
        problem += f" ({context} that starts at line {context_mark.line + 1})"
    return f"{kind} {path} is not valid YAML{where}: {problem[:200]}"


def _children(node: Node) -> list[tuple[str, Node]]:
    """(label, child) pairs: ``.key`` for mapping values, ``[i]`` for items; keys count as values."""
    if isinstance(node, MappingNode):
        pairs: list[tuple[str, Node]] = []
        for key, value in node.value:
            label = key.value if isinstance(key, ScalarNode) else "<key>"
            pairs += [("<key>", key), (str(label), value)]
        return pairs
    if isinstance(node, SequenceNode):
        return [(f"[{i}]", item) for i, item in enumerate(node.value)]
    return []


def _join(entry: str, label: str) -> str:
    return entry + label if label.startswith("[") or not entry else f"{entry}.{label}"


def _check_expansion(root: Node) -> None:
    """Count values as if every alias were copied out, each shared node once (memoised by id),
    so a billion-laughs document costs as many steps as it has nodes, not 10⁹."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()

    def size(node: Node, entry: str, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in in_progress:
            raise YamlRefused(entry, node, "an alias refers to the value that contains it (a recursive alias)")
        if depth > MAX_DEPTH:
            raise YamlRefused(entry, node, f"nested more than {MAX_DEPTH} levels deep")
        in_progress.add(key)
        total = 1
        for label, child in _children(node):
            total += size(child, _join(entry, label) if label != "<key>" else entry, depth + 1)
            if total > MAX_NODES:  # stop at once: a bomb's total overflows nothing, but why count on
                break
        in_progress.discard(key)
        sizes[key] = total
        return total

    if size(root, "", 0) <= MAX_NODES:
        return
    entry, node = "", root  # name the entry: descend into the child that is too big on its own
    while True:
        big = [(label, child) for label, child in _children(node)
               if label != "<key>" and sizes.get(id(child), 0) > MAX_NODES // 10]
        if not big:
            break
        label, node = big[0]
        entry = _join(entry, label)
    raise YamlRefused(entry, node, f"expands to more than {MAX_NODES:,} values through aliases "
                                   "(a 'billion laughs' file?); write the values out instead")


def _check_entries(node: Node, entry: str, depth: int, checked: set[int]) -> None:
    """Duplicate keys and non-finite floats, each reported with the entry that holds it. Bounded
    by :data:`MAX_NODES`, which :func:`_check_expansion` has just enforced."""
    if isinstance(node, ScalarNode):
        if node.tag == _FLOAT_TAG and id(node) not in checked:
            checked.add(id(node))
            value = yaml.SafeLoader("").construct_yaml_float(node)
            if not math.isfinite(value):
                raise YamlRefused(entry, node, f"{node.value[:20]} is not a finite number")
        return
    if isinstance(node, MappingNode):
        seen: dict[Any, Node] = {}
        for key, _ in node.value:
            if isinstance(key, ScalarNode) and key.tag != _MERGE_TAG:
                if key.value in seen and seen[key.value].tag == key.tag:
                    raise YamlRefused(_join(entry, key.value), key,
                                      f"the key {excerpt(key.value)} is given twice in this mapping "
                                      f"(first at line {seen[key.value].start_mark.line + 1})")
                seen[key.value] = key
    for label, child in _children(node):
        _check_entries(child, _join(entry, label) if label != "<key>" else entry, depth + 1, checked)
