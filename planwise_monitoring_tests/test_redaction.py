"""Secret masking: registered values and their URL parts, short values at word boundaries, secrets
that announce themselves in URLs and headers, secret-looking keys in config and tags."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from planwise_monitoring import redaction
from planwise_monitoring.redaction import (
    looks_secret_key,
    redact,
    redact_mapping,
    register_secret,
    register_secret_env,
    secret_env,
)

HOOK = "http://127.0.0.1:8080/hook/SECRETPATH?token=abc123&sig=9f8e"


@pytest.fixture(autouse=True)
def fresh_registry() -> Iterator[None]:
    """Each test starts with nothing registered (the registry is per process) and leaves none behind."""
    saved = set(redaction._registered), set(redaction._registered_names)
    redaction._registered.clear()
    redaction._registered_names.clear()
    redaction._version += 1
    yield
    redaction._registered.clear()
    redaction._registered_names.clear()
    redaction._registered.update(saved[0])
    redaction._registered_names.update(saved[1])
    redaction._version += 1


@pytest.mark.parametrize("text, expected", [
    (f"POST {HOOK} failed", "POST *** failed"),                                      # whole
    ("HTTPConnectionPool: Max retries exceeded with url: /hook/SECRETPATH?token=abc123&sig=9f8e",
     "HTTPConnectionPool: Max retries exceeded with url: ***"),                      # path and query
    ("404 for http://127.0.0.1:8080/hook/SECRETPATH", "404 for ***"),                # without the query
    ("no route /hook/SECRETPATH", "no route ***"),                                   # path alone
    ("segment SECRETPATH rejected", "segment *** rejected"),                         # a token-like segment
    ("the token was abc123", "the token was ***"),                                   # one query value
    ("signature 9f8e does not match", "signature *** does not match"),               # a short one, as a word
    ("hook and host 127.0.0.1:8080 are not secrets", "hook and host 127.0.0.1:8080 are not secrets"),
    ("9f8e7d is another value", "9f8e7d is another value"),                          # short: not inside words
])
def test_a_registered_url_is_masked_whole_and_by_its_parts(text: str, expected: str):
    register_secret(HOOK)
    assert redact(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("login pw42 refused", "login *** refused"),
    ("(pw42), 'pw42' and pw42. and pw42_x", "(***), '***' and ***. and pw42_x"),
    ("pw423 and upw42 are other words", "pw423 and upw42 are other words"),
    ("PW42 differs in case", "PW42 differs in case"),
])
def test_short_secrets_are_masked_where_they_stand_as_a_word(text: str, expected: str):
    register_secret("pw42")
    assert redact(text) == expected


def test_values_of_one_or_two_characters_are_never_masked():
    register_secret("7")
    register_secret("ab")
    assert redact("step 7 of ab") == "step 7 of ab"


@pytest.mark.parametrize("text, expected", [
    ("could not connect to postgresql://app:hunter2@db:5432/sim", "could not connect to postgresql://app:***@db:5432/sim"),
    ("clone https://ghp_abcdef123@github.com/org/repo", "clone https://***@github.com/org/repo"),
    ("GET https://x.example/cb?page=2&access_token=t0k&X-Amz-Signature=ff00&api_key=k1#top",
     "GET https://x.example/cb?page=2&access_token=***&X-Amz-Signature=***&api_key=***#top"),
    ("https://blob.example/c?sv=2024&sig=Zm9vYmFy%3D&se=2026", "https://blob.example/c?sv=2024&sig=***&se=2026"),
    ("Authorization: Bearer eyJhbGciOi.J9x-1", "Authorization: Bearer ***"),
    ("Basic authentication required, expected key=value", "Basic authentication required, expected key=value"),
    ("https://docs.example/page?year=2025", "https://docs.example/page?year=2025"),
])
def test_secrets_that_announce_themselves_are_masked_unregistered(text: str, expected: str):
    assert redact(text) == expected


def test_environment_values_by_variable_name(monkeypatch: pytest.MonkeyPatch):
    assert redact("a s3cr3t-value") == "a s3cr3t-value"
    monkeypatch.setenv("PLANWISE_TEST_PASSWORD", "s3cr3t-value")  # after the first call: the cache notices
    monkeypatch.setenv("PLANWISE_DB_TOKEN", "tk9")  # short, by name alone
    monkeypatch.setenv("PLANWISE_TOKEN_REFRESH", "true")  # a setting, not a secret
    monkeypatch.setenv("PLANWISE_DOCS_URL", "https://h.example/docs/intro")  # neither named nor shaped like one
    assert redact("a s3cr3t-value, tk9 and true") == "a ***, *** and true"
    assert redact("see https://h.example/docs/intro") == "see https://h.example/docs/intro"
    monkeypatch.delenv("PLANWISE_TEST_PASSWORD")
    assert redact("a s3cr3t-value") == "a s3cr3t-value"


def test_a_variable_read_through_secret_env_is_a_secret_whatever_its_name(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MY_HOOK", "https://h.example/x/Y1234567")
    assert secret_env("MY_HOOK") == "https://h.example/x/Y1234567"
    assert redact("post https://h.example/x/Y1234567 failed") == "post *** failed"
    monkeypatch.setenv("MY_HOOK", "https://h.example/x/Z7654321")  # rotated later: still masked
    assert redact("post https://h.example/x/Z7654321") == "post ***"
    assert secret_env("UNSET_VARIABLE_XYZ") is None


def test_a_named_variable_is_masked_before_anyone_reads_it(monkeypatch: pytest.MonkeyPatch):
    """What a process that only loaded the alert configuration (a step process) needs."""
    register_secret_env("OPS_WEBHOOK_LOCATION")
    monkeypatch.setenv("OPS_WEBHOOK_LOCATION", "https://ops.example/in/abcdef99")
    assert redact("sent to https://ops.example/in/abcdef99") == "sent to ***"


def test_redact_passes_none_and_empty_through():
    assert redact(None) is None and redact("") == ""


def test_registering_from_threads_while_redacting_is_safe():
    errors: list[BaseException] = []

    def register(worker: int) -> None:
        try:
            for i in range(60):
                register_secret(f"secret-{worker}-{i:04d}")
                redact(f"x secret-{worker}-{i:04d} y")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert redact(" ".join(f"secret-{w}-0059" for w in range(4))) == "*** *** *** ***"


@pytest.mark.parametrize("key, secret", [
    ("password", True), ("DB_PASSWORD", True), ("apiKey", True), ("api_key", True), ("key", True),
    ("private_key", True), ("client-secret", True), ("snowflake.credentials", True), ("dsn", True),
    ("X-Auth-Token", True), ("Authorization", True), ("signing_key", True), ("passwd", True),
    ("dagster/partition_key", False), ("asset_key", False), ("dagster/run_key", False), ("author", False),
    ("simulation_year", False), ("keys", False), ("monkey", False), ("planwise/scenario", False),
])
def test_which_keys_look_secret(key: str, secret: bool):
    assert looks_secret_key(key) is secret


def test_mappings_mask_secret_keys_recursively_and_redact_every_string():
    register_secret("registered-value")
    config = {
        "ops": {"load": {"config": {
            "db": {"host": "db.local", "password": "pw", "port": 5432},
            "credentials": {"user": "u", "nested": [{"x": "y"}, 42]},
            "note": "uses registered-value", "apiKey": 7, "token": None, "auth_enabled": True,
            "urls": ["postgresql://app:pw2@db/sim", "plain"],
        }}},
        "tags": ("a", "b"),
    }
    assert redact_mapping(config) == {
        "ops": {"load": {"config": {
            "db": {"host": "db.local", "password": "***", "port": 5432},
            "credentials": {"user": "***", "nested": [{"x": "***"}, "***"]},
            "note": "uses ***", "apiKey": "***", "token": None, "auth_enabled": True,
            "urls": ["postgresql://app:***@db/sim", "plain"],
        }}},
        "tags": ["a", "b"],
    }
    assert redact_mapping({"registered-value": 1}) == {"***": 1}  # keys are text too
    assert redact_mapping("just text registered-value") == "just text ***"


@pytest.mark.parametrize("value, secret", [
    ("http://127.0.0.1:8080/hook/SECRETPATH", True),           # a token-like path segment
    ("https://h.example/in?token=abc123", True),               # a secret query parameter
    ("postgresql://app:pw@db/sim", True),                      # a password
    ("http://proxy.internal:3128", False),
    ("https://pypi.org/simple", False),
    ("https://docs.example/guide/intro?page=2", False),
    ("/usr/local/bin", False),
])
def test_urls_in_the_environment_that_carry_credentials_are_secrets_whatever_the_name(
        monkeypatch: pytest.MonkeyPatch, value: str, secret: bool):
    """A step process never reads the alert channels' variables, yet their URLs reach its errors."""
    monkeypatch.setenv("PLAIN_SETTING", value)
    assert (redact(f"failed: {value}") == "failed: ***") is secret
