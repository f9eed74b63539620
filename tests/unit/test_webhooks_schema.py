"""``config/webhooks.yaml``: validated at load with file, key and reason; secrets only by
reference, checked where the service's environment is known (``ivr check-config``)."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

from hotline.cli import main as ivr
from ivr.config import DEFAULT_CONFIG_DIR, ConfigError, load_config, read_section
from webhooks.schema import (
    WebhooksConfig,
    WebhookSecretError,
    decode_secret,
    secret_problems,
)

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
HOOK = """webhooks:
  crm:
    url: https://crm.example.com/hook
    secret_env: CRM_SECRET
"""


def config_dir(tmp_path: Path, webhooks_yaml: str | None) -> Path:
    target = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, target)
    for intents in target.glob("intents*.yaml"):  # no speech model to load here
        text = intents.read_text()
        if "\nspeech:\n" in text:
            intents.write_text(text.replace("\nspeech:\n", "\nspeech:\n  enabled: false\n", 1))
    if webhooks_yaml is None:
        (target / "webhooks.yaml").unlink()
    else:
        (target / "webhooks.yaml").write_text(webhooks_yaml)
    return target


def webhooks_file(tmp_path: Path, webhooks_yaml: str) -> Path:
    path = tmp_path / "webhooks.yaml"
    path.write_text(webhooks_yaml)
    return path


def problems_of(tmp_path: Path, webhooks_yaml: str) -> list[str]:
    """The problems the loader reports for this webhooks.yaml (``ivr.config`` reads each
    file with ``read_section``)."""
    with pytest.raises(ConfigError) as caught:
        read_section(webhooks_file(tmp_path, webhooks_yaml), WebhooksConfig.model_validate)
    return caught.value.problems


def loaded(tmp_path: Path, webhooks_yaml: str) -> WebhooksConfig:
    return read_section(webhooks_file(tmp_path, webhooks_yaml), WebhooksConfig.model_validate)


def test_the_shipped_config_has_no_webhook() -> None:
    """config/webhooks.yaml ships with none configured (the example is commented out)."""
    cfg = load_config(DEFAULT_CONFIG_DIR, environ={})
    assert cfg.webhooks is not None and cfg.webhooks.webhooks == {}


def test_a_config_directory_without_the_file_has_no_webhooks(tmp_path: Path) -> None:
    """webhooks.yaml is optional: a config directory from before it loads, with none."""
    assert load_config(config_dir(tmp_path, None), environ={}).webhooks is None


def test_a_webhook_with_defaults(tmp_path: Path) -> None:
    """A webhook needs a URL and the secret's place; it gets work-order events (WO*), a
    10 s timeout and ten attempts by default."""
    cfg = load_config(config_dir(tmp_path, HOOK), environ={})
    assert cfg.webhooks is not None
    assert cfg.webhooks == loaded(tmp_path, HOOK)
    hook = cfg.webhooks.webhooks["crm"]
    assert (hook.kinds, hook.timeout_s, hook.retry.attempts) == (["WO*"], 10.0, 10)


@pytest.mark.parametrize(("yaml_text", "key", "reason"), [
    (HOOK.replace("secret_env: CRM_SECRET", "secret: whsec_abc"), "webhooks.crm",
     "never written in the config"),
    (HOOK.replace("    secret_env: CRM_SECRET\n", ""), "webhooks.crm", "secret_env or secret_file"),
    (HOOK + "    secret_file: /etc/x\n", "webhooks.crm", "exactly one"),
    (HOOK.replace("https://crm.example.com/hook", "ftp://x"), "webhooks.crm.url",
     "not an http:// or https:// URL"),
    (HOOK.replace("https://crm", "http://crm"), "webhooks.crm", "plain http off loopback"),
    (HOOK + "    kinds: [woCreate]\n", "webhooks.crm.kinds", "upper case"),
    (HOOK + "    retry: {attempts: 0}\n", "webhooks.crm.retry.attempts", "greater than or equal"),
    (HOOK + "    retry: {initial_s: 600}\n", "webhooks.crm.retry", "above max_s"),
    (HOOK + "    retires: {}\n", "webhooks.crm.retires", "Extra inputs"),
    (HOOK.replace("crm:", "'crm hooks':"), "webhooks", "a webhook's name"),
])
def test_bad_values_name_file_key_and_reason(tmp_path, yaml_text, key, reason) -> None:
    """Each mistake is one problem line naming webhooks.yaml, the key and the reason."""
    (problem,) = problems_of(tmp_path, yaml_text)
    assert problem.startswith(f"{tmp_path / 'webhooks.yaml'}: {key}")
    assert reason in problem


def test_plain_http_on_loopback_or_when_allowed(tmp_path: Path) -> None:
    """http:// is accepted to a loopback receiver, and elsewhere with allow_plaintext."""
    local = HOOK.replace("https://crm.example.com", "http://127.0.0.1:8099")
    allowed = HOOK.replace("https://crm", "http://crm") + "    allow_plaintext: true\n"
    for text in (local, allowed):
        assert loaded(tmp_path, text).webhooks["crm"].url


def test_secrets_come_from_the_environment_or_a_file(tmp_path: Path) -> None:
    """The key is the whsec_ secret decoded, from the named variable or file; a missing,
    malformed or short one is a problem naming where it was looked for."""
    assert decode_secret(SECRET) == bytes(range(32))
    for bad, reason in (("", "empty or not set"), ("abc", "whsec_<base64>"),
                        ("whsec_!!", "not base64"),
                        ("whsec_" + base64.b64encode(b"short").decode(), "5 bytes")):
        with pytest.raises(WebhookSecretError, match=reason):
            decode_secret(bad)
    config = loaded(tmp_path, HOOK)
    file = tmp_path / "webhooks.yaml"
    assert secret_problems(config, file, {"CRM_SECRET": SECRET}) == []
    (problem,) = secret_problems(config, file, {})
    assert problem.startswith(f"{file}: webhooks.crm: environment variable CRM_SECRET")
    secret_file = tmp_path / "crm.secret"
    secret_file.write_text(SECRET + "\n")
    on_file = HOOK.replace("secret_env: CRM_SECRET", f"secret_file: {secret_file}")
    assert loaded(tmp_path, on_file).webhooks["crm"].secret({}) == bytes(range(32))
    (problem,) = secret_problems(loaded(tmp_path, on_file.replace("crm.secret", "x")), file, {})
    assert "cannot read" in problem


def test_check_config_reports_a_bad_webhook_and_a_missing_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ivr check-config`` fails on a bad webhooks.yaml, and on a secret that is not in the
    environment it runs in; with the secret set it passes."""
    broken = config_dir(tmp_path / "a", HOOK + "    timeout_s: -1\n")
    assert ivr(["--config", str(broken), "check-config"]) == 1
    assert "webhooks.yaml: webhooks.crm.timeout_s" in capsys.readouterr().err
    target = config_dir(tmp_path / "b", HOOK)
    monkeypatch.setenv("HOTLINE__SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("HOTLINE__ASTERISK__SOUNDS_DIR", str(tmp_path / "sounds"))
    monkeypatch.delenv("CRM_SECRET", raising=False)
    assert ivr(["--config", str(target), "check-config"]) == 1
    assert "webhooks.yaml: webhooks.crm: environment variable CRM_SECRET" in (
        capsys.readouterr().err)
    monkeypatch.setenv("CRM_SECRET", SECRET)
    ivr(["--config", str(target), "check-config"])
    assert "webhooks" not in capsys.readouterr().err


def test_the_dead_letter_commands_refuse_an_unknown_webhook(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``ivr webhooks dead|redrive`` name a configured webhook: another name exits 2 with the
    configured ones listed, before Redis is asked anything."""
    assert ivr(["--config", str(DEFAULT_CONFIG_DIR), "webhooks", "redrive", "crm"]) == 2
    assert "no webhook 'crm'" in capsys.readouterr().err
