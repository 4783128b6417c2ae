"""The YAML reader refuses what no hand-written configuration holds, fast and with a short message."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from planwise_monitoring.alerting.policy import AlertConfigError, load_alert_config
from planwise_monitoring.evaluation.sla import SlaConfigError, load_sla_file
from planwise_monitoring.yaml_files import MAX_BYTES, excerpt, read_yaml

# 9 levels of 9 aliases: 9**9 (~387 million) strings to whoever walks it, in about 600 bytes.
BOMB = ", ".join(['&l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'] + [
    f"&l{i} [{','.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)])


def sla_bomb_text() -> str:
    """A bomb as an SLA threshold: before the fix, the SLA parser quoted the value in its error
    message (repr of 9**9 strings), which took tens of seconds and gigabytes to fail."""
    return ("definitions:\n"
            f"  - {{component_name: scd, warning_threshold_seconds: 1, sla_threshold_seconds: [{BOMB}]}}\n")


def write(tmp_path: Path, text: str, name: str = "sla.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_billion_laughs_file_is_refused_naming_the_entry(tmp_path: Path):
    path = write(tmp_path, sla_bomb_text())
    assert path.stat().st_size < 800
    with pytest.raises(SlaConfigError) as info:
        load_sla_file(path)
    message = str(info.value)
    assert message.startswith(f"SLA file {path}: definitions[0].sla_threshold_seconds[4] (line 2): ")
    assert "expands to more than 100,000 values through aliases" in message
    assert len(message) < 300


def test_a_billion_laughs_file_fails_within_a_small_memory_limit(tmp_path: Path):
    """In a child process limited to 1 GiB of address space: the error comes out, not a MemoryError."""
    path = write(tmp_path, sla_bomb_text())
    script = textwrap.dedent(f"""
        import resource, sys
        limit = 1 << 30
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        from planwise_monitoring.evaluation.sla import SlaConfigError, load_sla_file
        try:
            load_sla_file({str(path)!r})
        except SlaConfigError as exc:
            print("refused:", exc)
        except MemoryError:
            print("MemoryError")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("refused:") and "through aliases" in done.stdout


def test_recursive_aliases_are_refused(tmp_path: Path):
    with pytest.raises(SlaConfigError, match=r"definitions\[0\] \(line 1\): an alias refers to the value that "
                                             r"contains it"):
        load_sla_file(write(tmp_path, "definitions: &a [*a]\n"))


def test_ordinary_anchors_and_merges_still_work(tmp_path: Path):
    path = write(tmp_path, textwrap.dedent("""
        x-base: &base {component_type: SCD, sla_threshold_seconds: 100, warning_threshold_seconds: 80}
        definitions:
          - {<<: *base, component_name: a}
          - {<<: *base, component_name: b, sla_threshold_seconds: 200}
    """))
    assert read_yaml(path, "SLA file", SlaConfigError)["definitions"][1] == {
        "component_type": "SCD", "sla_threshold_seconds": 200, "warning_threshold_seconds": 80, "component_name": "b"}


def test_duplicate_keys_are_refused_in_sla_and_alert_files(tmp_path: Path):
    sla = write(tmp_path, textwrap.dedent("""\
        definitions:
          - component_name: scd
            sla_threshold_seconds: 100
            warning_threshold_seconds: 50
            sla_threshold_seconds: 10
    """))
    with pytest.raises(SlaConfigError) as info:
        load_sla_file(sla)
    assert str(info.value) == (f"SLA file {sla}: definitions[0].sla_threshold_seconds (line 5): the key "
                               "'sla_threshold_seconds' is given twice in this mapping (first at line 3)")
    alerts = write(tmp_path, "throttle: 1h\nchannels:\n  log: {type: log}\nthrottle: 1m\n", "alerts.yaml")
    with pytest.raises(AlertConfigError, match=r"alerts file .*alerts.yaml: throttle \(line 4\): the key 'throttle' "
                                               r"is given twice"):
        load_alert_config(alerts)


@pytest.mark.parametrize("written", [".nan", ".NaN", ".inf", "-.inf", "1.0e+999"])
def test_non_finite_numbers_are_refused(tmp_path: Path, written: str):
    path = write(tmp_path, f"default:\n  sla_threshold_seconds: {written}\n  warning_threshold_seconds: 1\n")
    with pytest.raises(SlaConfigError) as info:
        load_sla_file(path)
    assert str(info.value) == (f"SLA file {path}: default.sla_threshold_seconds (line 2): "
                               f"{written} is not a finite number")


def test_an_oversized_file_is_refused_before_it_is_read_with_a_short_message(tmp_path: Path):
    path = tmp_path / "sla.yaml"
    with path.open("w") as fh:  # one 2 MiB line: the old error quoted the whole of it
        fh.write("definitions: [" + "x" * (2 * MAX_BYTES) + "\n")
    with pytest.raises(SlaConfigError) as info:
        load_sla_file(path)
    assert str(info.value) == (f"SLA file {path} is {path.stat().st_size:,} bytes; a configuration file may hold "
                               f"at most {MAX_BYTES:,}")


def test_a_long_invalid_line_gives_a_short_message(tmp_path: Path):
    path = write(tmp_path, "a: [" + "'x', " * 100_000 + "\n")
    with pytest.raises(SlaConfigError, match=r"is not valid YAML at line 2") as info:
        load_sla_file(path)
    assert len(str(info.value)) < 400


@pytest.mark.parametrize("text, message", [
    ("[" * 200 + "]" * 200, "nested more than 64 levels deep"),
    (None, r"is not UTF-8 text \(byte 3\)"),
])
def test_deep_nesting_and_binary_files_are_refused(tmp_path: Path, text: str | None, message: str):
    path = tmp_path / "sla.yaml"
    if text is None:
        path.write_bytes(b"a: \xff\xfe\n")
    else:
        path.write_text(text)
    with pytest.raises(SlaConfigError, match=message):
        load_sla_file(path)


def test_an_empty_file_is_none(tmp_path: Path):
    assert read_yaml(write(tmp_path, "# nothing yet\n"), "SLA file", SlaConfigError) is None


def test_excerpt_is_bounded_even_for_shared_structures():
    shared: list = ["lol"] * 9
    for _ in range(8):
        shared = [shared] * 9
    assert len(excerpt(shared)) <= 60 and excerpt(shared).startswith("[[[")
    assert excerpt("short") == "'short'"
