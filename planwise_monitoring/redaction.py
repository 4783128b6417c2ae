"""Keeping secrets out of everything we store, log and send.

    import os
    from planwise_monitoring.redaction import redact, redact_mapping, register_secret, secret_env

    os.environ["PLANWISE_SMTP_PASSWORD"] = "hunter2-long"
    assert redact("login failed for hunter2-long") == "login failed for ***"

    os.environ["MY_HOOK"] = "https://hooks.example/hook/T0KEN123?sig=9f8e"
    url = secret_env("MY_HOOK")          # every value a channel reads is a secret, whatever its name
    assert redact(f"POST {url}: 404") == "POST ***: 404"
    assert redact("retrying /hook/T0KEN123") == "retrying ***"   # parts of it too
    assert redact("postgresql://app:pw@db/x") == "postgresql://app:***@db/x"   # never registered

    assert redact_mapping({"api_key": "k1", "year": 2025}) == {"api_key": "***", "year": 2025}

What is masked (as ``***``):

* the values of environment variables whose names look secret (``*_TOKEN``, ``*_PASSWORD``…),
  and URLs in the environment that carry a credential (a password, a secret-looking query
  parameter, a token-like path segment), whatever their variable is called: a process that never
  read the variable (a step process, where only the sensor sends alerts) masks it too;
* every value registered with :func:`register_secret`, read with :func:`secret_env`, or held by a
  variable named with :func:`register_secret_env` (its current value, so a later change is
  masked too). A registered URL is masked whole and also by its parts, since an error message
  may quote only some of it: userinfo and password, path (with and without the query), query
  string, each query value, and each path segment that looks like a token;
* in any text, secrets that announce themselves: the password (or bare userinfo) of a URL
  (``scheme://user:pw@host``), the values of query parameters named like secrets (``token=``,
  ``key=``, ``sig=``, ``password=``…), and ``Bearer``/``Basic`` credentials.

Short secrets: a value of 6 characters or more is masked wherever it occurs. A value of 3 to 5
characters is masked only where it stands as a word of its own (no letter, digit or ``_`` on
either side): short strings occur inside ordinary words (``"abc"`` in ``"abcdef"``), while an
error message that quotes the secret still shows it as a word. Values of 1–2 characters are not
masked: they cannot be told apart from text (every ``1`` or ``a`` would go) and protect nothing.
For environment variables picked by their name alone (not registered), the short values
``true``/``false``/``yes``/``no``/``on``/``off``/``none``/``null`` are settings, not secrets.

:func:`redact` is fast: the secrets are compiled into one regular expression, rebuilt only when
the environment or the registered set changes (a dict comparison tells), and text in which
nothing can match returns at once.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

MASK = "***"
_SECRET_NAME = re.compile(r"(SECRET|TOKEN|PASSWORD|PASSWD|API_KEY|APIKEY|WEBHOOK|CREDENTIAL|PRIVATE_KEY|DSN)", re.I)
_MIN_LENGTH = 3  # shorter values are masked nowhere (see the module docstring)
_MIN_ANYWHERE = 6  # from here on a value is masked inside words too
_NOT_SECRETS = frozenset({"true", "false", "yes", "no", "on", "off", "none", "null"})

# Secrets that announce themselves in any text, registered or not.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^\s/?#@:\"'<>]+)(?::([^\s/?#@\"'<>]*))?@")
_SECRET_PARAM = (r"[^\s=&#?;\"'<>]*(?:token|key|sig|signature|secret|password|passwd|pwd|pass|auth|credential"
                 r"|session)[^\s=&#?;\"'<>]*")
_SECRET_PARAM_NAME = re.compile(_SECRET_PARAM, re.I)
_QUERY_SECRET = re.compile(rf"(?i)([?&;]{_SECRET_PARAM}=)([^\s&#;\"'<>]+)")
# A credential has a digit or a symbol in it; "Basic authentication" does not.
_AUTH_HEADER = re.compile(r"(?i)\b(bearer|basic)(\s+)(?=[A-Za-z._~+/\-]*[0-9._~+/\-])[A-Za-z0-9._~+/\-]{8,}=*")


def _announcing_patterns(text: str) -> list[re.Pattern[str]]:
    """The patterns above that can match ``text`` at all, by substring tests that cost far less
    than running the case-insensitive patterns (Bearer/bearer/BEARER, Basic/basic/BASIC)."""
    found = []
    if "@" in text and "://" in text:
        found.append(_USERINFO)
    if "=" in text:
        found.append(_QUERY_SECRET)
    if "earer" in text or "EARER" in text or "asic" in text or "ASIC" in text:
        found.append(_AUTH_HEADER)
    return found

_REPLACEMENTS: dict[re.Pattern[str], Any] = {
    _USERINFO: lambda m: _mask_userinfo(m), _QUERY_SECRET: rf"\1{MASK}", _AUTH_HEADER: rf"\1\2{MASK}"}

_lock = threading.Lock()
_registered: set[str] = set()  # values read through secret_env(), whatever their variable is called
_registered_names: set[str] = set()  # environment variables whose value is a secret whatever it is
_version = 0  # bumped on every registration, to invalidate the compiled pattern


def register_secret(value: str | None) -> None:
    """Mask ``value`` (and, for a URL, its parts) everywhere from now on, in this process.

        register_secret("pw42")
        assert redact("login pw42 refused") == "login *** refused"
    """
    global _version
    if not value:
        return
    variants = {p for p in _variants(value) if len(p) >= _MIN_LENGTH}
    with _lock:
        if not variants <= _registered:
            _registered.update(variants)
            _version += 1


def register_secret_env(name: str) -> None:
    """Treat the environment variable ``name`` as a secret, whatever it is called: its value now
    and any later value are masked. Call it where a configuration names a variable holding a secret
    (e.g. a channel's ``url_env``), so every process that loads the configuration masks it.

        import os
        os.environ["OPS_HOOK"] = "https://ops.example/h/abc123def"
        register_secret_env("OPS_HOOK")
        assert redact("POST https://ops.example/h/abc123def failed") == "POST *** failed"
    """
    global _version
    if name and name not in _registered_names:
        with _lock:
            _registered_names.add(name)
            _version += 1


def secret_env(name: str) -> str | None:
    """Read a secret from the environment variable ``name`` and register it for masking.

        import os
        os.environ["OPS_HOOK"] = "https://ops.example/h/abc123def"
        assert secret_env("OPS_HOOK") == "https://ops.example/h/abc123def"
        assert redact("to https://ops.example/h/abc123def") == "to ***"

    Every value a channel or the store reads from the environment goes through here: it is a
    secret whatever the variable is called. The name is remembered too, so a later value is masked.
    """
    register_secret_env(name)
    value = os.environ.get(name)
    register_secret(value)
    return value


def secret_values() -> tuple[str, ...]:
    """Every value masked as a literal now, longest first. The same tuple object is returned
    until the secrets change, so callers may cache what they derive from it by identity.

        register_secret("s3cr3t-value")
        assert "s3cr3t-value" in secret_values()
    """
    return _compiled().literals


def announces_secret(text: str) -> bool:
    """Whether ``text`` holds a secret that announces itself (a URL's password or bare userinfo,
    a secret-looking query parameter, a Bearer/Basic credential), registered or not.

        assert announces_secret("postgresql://app:pw@db/x") and not announces_secret("year=2025")
    """
    return any(p.search(text) for p in _announcing_patterns(text))


def redact(text: str | None) -> str | None:
    """``text`` with every secret masked (see the module docstring); None and "" pass through.

        register_secret("tok-123456")
        assert redact("GET /x?token=tok-123456") == "GET /x?token=***"
    """
    if not text:
        return text
    compiled = _compiled()
    for value in compiled.anywhere:  # longest first: a URL goes whole before its parts could
        if value in text:
            text = text.replace(value, MASK)
    if compiled.words is not None and any(value in text for value in compiled.short):
        text = compiled.words.sub(MASK, text)
    for pattern in _announcing_patterns(text):
        text = pattern.sub(_REPLACEMENTS[pattern], text)
    return text


def redact_mapping(value: Any) -> Any:
    """A copy of ``value`` (dicts, lists and tuples, recursively) in which every value under a key
    that looks secret is masked whatever it is, and every other string passes through :func:`redact`.
    For run config and tags, which users fill with anything.

        config = {"ops": {"load": {"config": {"db": {"password": "pw", "host": "h"}, "apiKey": 7}}}}
        assert redact_mapping(config) == {
            "ops": {"load": {"config": {"db": {"password": "***", "host": "h"}, "apiKey": "***"}}}}
        assert redact_mapping({"dagster/partition_key": "2025"}) == {"dagster/partition_key": "2025"}
    """
    return _redact_value(value, masked=False, depth=0)


def looks_secret_key(key: str) -> bool:
    """Whether a config or tag key names a secret: a word of it (camelCase, ``_``, ``-``, ``/`` and
    ``.`` split words) is password, token, secret, credential, dsn, auth…, or it ends in ``key``
    that is not a data key (``partition_key``, ``asset_key``, ``run_key``… are not secrets).

        assert looks_secret_key("DB_PASSWORD") and looks_secret_key("apiKey") and looks_secret_key("key")
        assert not looks_secret_key("partition_key") and not looks_secret_key("author")
    """
    words = _WORD_SPLIT.split(_CAMEL.sub(r"\1_\2", key).lower())
    words = [w for w in words if w]
    if any(w in _SECRET_WORDS for w in words):
        return True
    return bool(words) and words[-1] == "key" and (len(words) == 1 or words[-2] not in _DATA_KEY_WORDS)


# -- the compiled pattern ---------------------------------------------------------------------

class _Compiled:
    """The literal secrets of one (environment, registered set) state, ready to search: the long
    ones as plain substrings (``in`` and ``str.replace`` beat a regex alternation several times
    over), the short ones as one whole-word pattern."""

    def __init__(self, anywhere: set[str], short: set[str]):
        self.anywhere = tuple(sorted(anywhere, key=len, reverse=True))
        self.short = tuple(sorted(short, key=len, reverse=True))
        self.literals = tuple(sorted(anywhere | short, key=len, reverse=True))
        alternatives = "|".join(re.escape(v) for v in self.short)
        self.words = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)") if alternatives else None


_cache: tuple[dict[bytes, bytes] | None, int, _Compiled] | None = None


def _compiled() -> _Compiled:
    """The pattern for the current state; rebuilt only when os.environ or the registry changed
    (comparing the environment's dict to a snapshot costs ~1 µs, rescanning it ~90 µs)."""
    global _cache
    env: dict[bytes, bytes] | None = getattr(os.environ, "_data", None)
    cache = _cache
    if cache is not None and cache[1] == _version and env is not None and cache[0] == env:
        return cache[2]
    with _lock:  # a consistent copy; registrations from other threads wait a moment
        version, registered, names = _version, set(_registered), list(_registered_names)
    values = registered
    for name, value in os.environ.items():
        if (_SECRET_NAME.search(name) and value.strip().lower() not in _NOT_SECRETS) or _credential_url(value):
            values.update(_variants(value))
    for name in names:
        values.update(_variants(os.environ.get(name, "")))
    values = {v for v in values if len(v) >= _MIN_LENGTH}
    compiled = _Compiled({v for v in values if len(v) >= _MIN_ANYWHERE}, {v for v in values if len(v) < _MIN_ANYWHERE})
    _cache = (dict(env) if env is not None else None, version, compiled)
    return compiled


def _variants(value: str) -> set[str]:
    """``value`` itself (also stripped) and, for a URL, the parts an error message may quote alone."""
    found = {value, value.strip()}
    try:
        url = urlsplit(value.strip())
    except ValueError:
        return found
    if not (url.scheme and url.netloc):
        return found
    found.update(p for p in (url.password, url.username if url.password is None else None) if p)
    if url.path not in ("", "/"):
        found.update({url.path, unquote(url.path)})
        found.update(s for s in url.path.split("/") if _looks_like_token(s))
        if url.query:
            found.add(f"{url.path}?{url.query}")
    if url.query:
        found.add(url.query)
        found.update(v for _, v in parse_qsl(url.query, keep_blank_values=False))
    found.add(url._replace(query="", fragment="").geturl())
    return found


def _credential_url(value: str) -> bool:
    """Whether an environment value is a URL carrying a credential (``MY_HOOK=https://h/hook/T0KEN``,
    ``DB=postgresql://u:pw@h/db``, ``…?token=…``); ``HTTP_PROXY=http://proxy:3128`` is not."""
    if "://" not in value:
        return False
    try:
        url = urlsplit(value.strip())
        password = url.password
    except ValueError:
        return False
    return bool(url.scheme and url.netloc) and bool(
        password
        or any(_SECRET_PARAM_NAME.fullmatch(k) for k, _ in parse_qsl(url.query))
        or any(_looks_like_token(s) for s in url.path.split("/")))


def _looks_like_token(segment: str) -> bool:
    """A path segment that is an id or key rather than a word (``T0KEN123``, not ``hooks``)."""
    return len(segment) >= _MIN_ANYWHERE and not (segment.isalpha() and segment.islower())


def _mask_userinfo(match: re.Match[str]) -> str:
    scheme, user, password = match.groups()
    if password is None:  # a bare userinfo (https://TOKEN@host) is usually a token
        return f"{scheme}{MASK}@"
    return f"{scheme}{user}:{MASK}@"


# -- mappings ---------------------------------------------------------------------------------

_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
_SECRET_WORDS = frozenset({
    "password", "passwd", "pwd", "pass", "passphrase", "token", "secret", "secrets", "credential",
    "credentials", "dsn", "auth", "authorization", "oauth", "cookie", "signature", "sig", "apikey",
    "privatekey", "accesskey", "secretkey", "private", "jwt", "bearer", "session",
})
# "<word>_key" that holds data, not a secret.
_DATA_KEY_WORDS = frozenset({
    "partition", "asset", "run", "primary", "foreign", "sort", "group", "cache", "dedupe", "idempotency",
    "join", "natural", "surrogate", "business", "unique", "composite", "lookup", "index", "row", "record",
    "column", "table", "model", "object", "s3", "file", "dict", "map", "hash", "event", "step", "op",
})
_MAX_DEPTH = 64


def _redact_value(value: Any, *, masked: bool, depth: int) -> Any:
    if value is None or isinstance(value, bool):
        return value  # "not set" and on/off are not secrets, and stay readable
    if depth > _MAX_DEPTH:
        return MASK if masked else redact(str(value))
    if isinstance(value, Mapping):
        return {(redact(k) if isinstance(k, str) else k):
                _redact_value(v, masked=masked or (isinstance(k, str) and looks_secret_key(k)), depth=depth + 1)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(v, masked=masked, depth=depth + 1) for v in value]
    if masked:
        return MASK
    if isinstance(value, str):
        return redact(value)
    return value
