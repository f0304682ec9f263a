"""Secret scrubbing: strings, log records, and the Secret holder."""

from __future__ import annotations

import copy
import dataclasses
import json
import logging

import pytest

from reasonloop.policy.secrets import REDACTED, ScrubbingFilter, Secret, env_secrets, install_log_filter, scrub

ENV = {
    "OPENAI_API_KEY": "sk-proj-abcdefghijklmnop",
    "MY_SERVICE_TOKEN": "tok_live_9f8e7d6c5b4a",
    "DB_PASSWORD": "correct horse battery",
    "TOKENIZERS_PARALLELISM": "false",  # a KEY/TOKEN-ish name with a value too short to be a secret
    "HOME": "/root/very-long-home-directory",
}


def test_env_secrets_picks_credential_names_only():
    assert set(env_secrets(ENV)) == {"sk-proj-abcdefghijklmnop", "tok_live_9f8e7d6c5b4a", "correct horse battery"}


def test_scrub_env_values_explicit_keys_and_patterns():
    text = (
        "key sk-proj-abcdefghijklmnop, token tok_live_9f8e7d6c5b4a, pw correct horse battery, "
        "explicit my-own-key-123, header Authorization: Bearer abc.def.ghi, other sk-ant-api03-zzzzzzzz, "
        '{"api_key": "plainvalue123"} parallelism false at /root/very-long-home-directory'
    )
    out = scrub(text, ["my-own-key-123", None, ""], environ=ENV)
    for secret in ("sk-proj-", "tok_live", "horse", "my-own-key", "abc.def.ghi", "sk-ant", "plainvalue123"):
        assert secret not in out, secret
    assert "Bearer [REDACTED]" in out and '"api_key": "[REDACTED]"' in out
    assert "parallelism false at /root/very-long-home-directory" in out
    assert out.count(REDACTED) == 7
    assert scrub(out, environ=ENV) == out  # idempotent


def test_scrub_without_patterns_keeps_key_shaped_words():
    text = "use sk-learn-style names; the key is my-own-key-123"
    assert scrub(text, ["my-own-key-123"], patterns=False, environ={}) == "use sk-learn-style names; the key is [REDACTED]"
    assert "sk-learn-style" not in scrub(text, environ={})


def test_longer_secret_is_replaced_whole():
    out = scrub("abcdefgh-and-more", ["abcdefgh", "abcdefgh-and-more"], environ={})
    assert out == REDACTED


def test_filter_scrubs_message_args_and_traceback(caplog):
    logger = logging.getLogger("reasonloop.tests.secrets")
    logger.addFilter(ScrubbingFilter(["canary-value-42"]))
    caplog.set_level(logging.DEBUG, logger=logger.name)
    try:
        raise RuntimeError("failed with canary-value-42")
    except RuntimeError:
        logger.exception("call with key %s and %r", "canary-value-42", {"k": "canary-value-42"})
    logger.debug("Bearer %s", "zzz-opaque-token")
    assert "canary-value-42" not in caplog.text and "zzz-opaque-token" not in caplog.text
    assert caplog.text.count(REDACTED) >= 4
    assert "canary" not in repr(logger.filters[-1])


def test_install_log_filter_is_idempotent():
    name = "reasonloop.tests.install"
    install_log_filter([name], ["s3cr3t-value"])
    install_log_filter([name], ["s3cr3t-value"])
    install_log_filter([name], ["other-secret"])
    assert len([f for f in logging.getLogger(name).filters if isinstance(f, ScrubbingFilter)]) == 2


def test_secret_holder_never_prints():
    @dataclasses.dataclass
    class Holder:
        key: Secret

    held = Holder(key=Secret("sk-hidden-123456789"))
    assert "hidden" not in repr(held) + str(held.key) + repr(dataclasses.asdict(held)) + repr(copy.deepcopy(held))
    assert held.key.get() == "sk-hidden-123456789" and held.key == Secret("sk-hidden-123456789")
    with pytest.raises(TypeError):
        json.dumps(dataclasses.asdict(held))
