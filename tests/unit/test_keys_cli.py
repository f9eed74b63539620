"""``ivr keys``: its wiring in the ``ivr`` command and its answers without a usable key."""

from __future__ import annotations

import base64

import pytest

from hotline.cli import main
from privacy.keys import KeyRing, MasterKeyError, parse_key_file


def test_init_prints_a_key_file_line(capsys: pytest.CaptureFixture[str]) -> None:
    """``ivr keys init --key-version 3`` prints one ``3:<base64 of 32 bytes>`` line that
    the key-file loader reads, and a reminder on stderr; two runs give two keys."""
    assert main(["keys", "init", "--key-version", "3"]) == 0
    first = capsys.readouterr()
    assert main(["keys", "init", "--key-version", "3"]) == 0
    second = capsys.readouterr().out.strip()
    (key,) = parse_key_file(first.out, "stdout")
    assert key.version == "3" and len(base64.b64decode(first.out.strip()[2:])) == 32
    assert "chmod 600" in first.err and second != first.out.strip()


def test_check_without_a_key_says_where_it_looked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    """No ``HOTLINE_MASTER_KEY`` and no key file at the configured path: exit 2 and a
    message naming the file, before any Redis is contacted."""
    monkeypatch.delenv("HOTLINE_MASTER_KEY", raising=False)
    missing = tmp_path / "nowhere.key"
    monkeypatch.setenv("HOTLINE__KEYS__MASTER_KEY_FILE", str(missing))
    monkeypatch.setenv("HOTLINE__REDIS__URL", "redis://127.0.0.1:1/0")
    assert main(["keys", "check"]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "HOTLINE_MASTER_KEY" in err


def test_the_service_config_names_the_key_file() -> None:
    """``service.yaml`` has a ``keys.master_key_file`` (the shipped config names one)."""
    from ivr.config import load_config

    cfg = load_config(environ={})
    assert cfg.service.keys.master_key_file == "/etc/hotline/master.key"
    with pytest.raises(MasterKeyError, match=r"/etc/hotline/master\.key"):
        KeyRing.load(key_file=cfg.service.keys.master_key_file, environ={})
