"""Keep API keys out of everything the project writes: exceptions, logs, trajectories.

:func:`scrub` replaces secrets in a string with ``[REDACTED]``. A secret is

* the value of any environment variable whose name contains ``KEY``, ``TOKEN``,
  ``SECRET`` or ``PASSWORD`` (values shorter than 8 characters are ignored: a
  ``TOKENIZERS_PARALLELISM=false`` is not a secret, and scrubbing ``false``
  everywhere would make logs unreadable);
* any string passed in ``extra_secrets`` (the policy passes its own key);
* anything shaped like a key: ``sk-...`` (OpenAI, Anthropic), ``Bearer ...``
  authorisation values, and a few other well-known provider prefixes.

:class:`ScrubbingFilter` applies the same function to ``logging`` records, so a
library that logs request headers at DEBUG level does not leak the key.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "REDACTED",
    "ScrubbingFilter",
    "Secret",
    "env_secrets",
    "install_log_filter",
    "scrub",
]

REDACTED = "[REDACTED]"

_SECRET_NAME_PARTS = ("KEY", "TOKEN", "SECRET", "PASSWORD")
_MIN_SECRET_LEN = 8

# Key-shaped strings. Each pattern matches the whole secret so the replacement
# leaves no suffix behind; ``Bearer`` keeps its scheme word for readability.
_KEY_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"),
    re.compile(r"\b(?:gsk|hf|ghp|gho|xoxb|xoxp|pk|rk)_[A-Za-z0-9_\-]{16,}"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}"),
)
_BEARER = re.compile(r"(\bBearer\s+)[^\s\"',;}]+", re.IGNORECASE)
_KEY_FIELD = re.compile(
    r"""((?:api[_-]?key|x-api-key|authorization|access[_-]?token)["']?\s*[:=]\s*["']?)([^\s"',;}]{8,})""",
    re.IGNORECASE,
)


def env_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of the environment variables that look like credentials.

    Args:
        environ: The environment to read (``os.environ`` when ``None``).

    Returns:
        The secret values, longest first (so a key that contains another is
        replaced whole).
    """
    env = os.environ if environ is None else environ
    values = {
        value
        for name, value in env.items()
        if any(part in name.upper() for part in _SECRET_NAME_PARTS) and len(value) >= _MIN_SECRET_LEN
    }
    return sorted(values, key=len, reverse=True)


def scrub(
    text: str,
    extra_secrets: Iterable[str | None] = (),
    *,
    patterns: bool = True,
    environ: Mapping[str, str] | None = None,
) -> str:
    """Replace every secret in ``text`` with ``[REDACTED]``.

    Args:
        text: Any text about to be logged, raised or stored.
        extra_secrets: Secrets known to the caller (an explicit API key); ``None``
            and empty values are skipped.
        patterns: Also replace key-shaped strings (``sk-...``, ``Bearer ...``). Off for
            model output, where only known secret values are replaced, so that a
            model writing about ``sk-learn-style`` names is recorded as written.
        environ: The environment whose credential-like variables are secrets
            (``os.environ`` when ``None``).

    Returns:
        ``text`` with the secrets replaced; unchanged if it held none.
    """
    if not text:
        return text
    literals = {s for s in extra_secrets if s and len(s) >= 4}
    literals.update(env_secrets(environ))
    for secret in sorted(literals, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    if not patterns:
        return text
    for pattern in _KEY_PATTERNS:
        text = pattern.sub(REDACTED, text)
    text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    return _KEY_FIELD.sub(lambda m: m.group(1) + REDACTED, text)


class ScrubbingFilter(logging.Filter):
    """A logging filter that scrubs the message, arguments and traceback of each record.

    The record is rewritten in place (message formatted, ``args`` cleared), so
    every handler downstream, including pytest's ``caplog``, sees scrubbed text.
    """

    def __init__(self, extra_secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self.extra_secrets: tuple[str, ...] = tuple(s for s in extra_secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not break logging
            message = str(record.msg)
        record.msg = scrub(message, self.extra_secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text, self.extra_secrets)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info, self.extra_secrets)
        return True

    def __repr__(self) -> str:  # never show the secrets it holds
        return f"ScrubbingFilter(<{len(self.extra_secrets)} secrets>)"


def install_log_filter(logger_names: Iterable[str], extra_secrets: Iterable[str | None] = ()) -> None:
    """Attach a :class:`ScrubbingFilter` to each named logger, once per set of secrets.

    A filter on a logger runs before the record propagates to its ancestors'
    handlers, so records the named loggers emit are scrubbed everywhere.

    Args:
        logger_names: Loggers to protect (e.g. LiteLLM's ``"LiteLLM"``).
        extra_secrets: Secrets to scrub besides the environment's.
    """
    wanted = tuple(s for s in extra_secrets if s)
    for name in logger_names:
        logger = logging.getLogger(name)
        present = any(isinstance(f, ScrubbingFilter) and f.extra_secrets == wanted for f in logger.filters)
        if not present:
            logger.addFilter(ScrubbingFilter(wanted))


class Secret:
    """A credential that does not print: ``repr``/``str`` show a mask, ``get()`` the value.

    Objects holding a key keep it in a ``Secret`` so that ``repr(config)``,
    ``dataclasses.asdict`` dumps and tracebacks that print locals do not leak it;
    ``json.dumps`` refuses it instead of writing it out.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        """The secret value, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self
