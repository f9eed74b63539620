"""Loading config/: the shipped files validate, and every kind of mistake is reported with
the file, the key and the reason (what ``ivr check-config`` prints)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline.cli import main as ivr_main
from ivr.config import ConfigError, load_config


def _problems(directory: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(directory, environ=environ or {})
    return caught.value.problems


def test_shipped_config_validates(config_dir: Path) -> None:
    """The files in config/ load whole: menus, prompts, intents, routing, work orders."""
    cfg = load_config(config_dir, environ={})
    assert cfg.menus.entry == "main"
    assert set(cfg.routing.rules) >= {"inquiry", "change", "fault", "complaint", "other"}
    assert cfg.service.agi.port == 4573


def test_broken_yaml_names_file_and_line(config_dir: Path) -> None:
    """A YAML syntax error is reported with the file and the line, not a traceback."""
    (config_dir / "menus.yaml").write_text("entry: main\nmenus:\n  main: [unclosed\n")
    (problem,) = _problems(config_dir)
    assert problem.startswith(f"{config_dir / 'menus.yaml'}: line ")
    assert "invalid YAML" in problem


def test_wrong_value_names_file_key_and_reason(config_dir: Path) -> None:
    """A value of the wrong kind names its key path and why it is refused."""
    text = (config_dir / "queues.yaml").read_text()
    text = text.replace("ring_timeout_s: 15", "ring_timeout_s: soon", 1)
    (config_dir / "queues.yaml").write_text(text)
    problems = _problems(config_dir)
    assert any("queues.yaml: queues.billing.ring_timeout_s:" in p for p in problems), problems


def test_every_problem_is_reported_at_once(config_dir: Path) -> None:
    """Two broken files give two problems in one run, so ops fix them in one go."""
    (config_dir / "service.yaml").write_text("agi: {port: 99999}\n")
    (config_dir / "workorders.yaml").write_text("retention_years: 1\n")
    problems = _problems(config_dir)
    assert any("service.yaml: agi.port:" in p for p in problems), problems
    assert any("workorders.yaml: retention_years:" in p for p in problems), problems


def test_missing_file_is_named(config_dir: Path) -> None:
    """A missing file is one clear line."""
    (config_dir / "intents.yaml").unlink()
    assert _problems(config_dir) == [f"{config_dir / 'intents.yaml'}: file not found"]


def test_menu_referring_to_unknown_prompt_or_request(config_dir: Path) -> None:
    """Cross-file references are checked: a menu prompt must exist in prompts.yaml, and a
    menu request type must have a routing rule."""
    text = (config_dir / "menus.yaml").read_text()
    text = text.replace("prompt: menu-changes", "prompt: menu-nowhere")
    text = text.replace("request: complaint}", "request: complaints}")
    (config_dir / "menus.yaml").write_text(text)
    problems = _problems(config_dir)
    assert any("menus.changes.prompt: prompt 'menu-nowhere' is not defined" in p for p in problems)
    assert any("no routing rule for request type 'complaints'" in p for p in problems)


def test_environment_overrides_service_keys(config_dir: Path) -> None:
    """HOTLINE__SECTION__KEY overrides service.yaml (values parsed as YAML scalars), and a
    bad override is reported like a bad file value."""
    cfg = load_config(config_dir, environ={"HOTLINE__AGI__PORT": "4574",
                                           "HOTLINE__REDIS__URL": "redis://10.0.0.5:6379/1"})
    assert cfg.service.agi.port == 4574
    assert cfg.service.redis.url == "redis://10.0.0.5:6379/1"
    problems = _problems(config_dir, {"HOTLINE__AGI__PORT": "many"})
    assert any("service.yaml: agi.port:" in p for p in problems)


def test_ari_password_never_from_the_repository(config_dir: Path, tmp_path: Path) -> None:
    """The ARI password comes from HOTLINE_ARI_PASSWORD or the password file, else none."""
    cfg = load_config(config_dir, environ={})
    secret = tmp_path / "ari-password"
    secret.write_text("s3cret\n")
    assert cfg.service.ari_password({"HOTLINE_ARI_PASSWORD": "from-env"}) == "from-env"
    with_file = cfg.service.model_copy(
        update={"ari": cfg.service.ari.model_copy(update={"password_file": str(secret)})}
    )
    assert with_file.ari_password({}) == "s3cret"
    missing = cfg.service.model_copy(
        update={"ari": cfg.service.ari.model_copy(update={"password_file": None})}
    )
    assert missing.ari_password({}) is None


def test_check_config_command_exit_status(config_dir: Path, capsys, monkeypatch) -> None:
    """``ivr check-config`` exits 0 on good config and 1 with file: key: reason lines."""
    monkeypatch.setenv("HOTLINE__SPOOL_DIR", str(config_dir.parent / "spool"))
    monkeypatch.setenv("HOTLINE__ASTERISK__SOUNDS_DIR", str(config_dir.parent / "sounds"))
    assert ivr_main(["--config", str(config_dir), "check-config"]) == 0
    (config_dir / "menus.yaml").write_text("entry: nowhere\nmenus: {}\n")
    assert ivr_main(["--config", str(config_dir), "check-config"]) == 1
    err = capsys.readouterr().err
    assert "menus.yaml" in err and "entry menu 'nowhere' is not defined" in err


def test_config_files_parse_the_same_with_libyaml_as_with_pure_python() -> None:
    """ivr.yamlfile parses with libyaml (reloads parse the large corpus on the reactor
    thread): every shipped file reads exactly as yaml.safe_load reads it."""
    import yaml

    from ivr import yamlfile
    from ivr.yamlfile import load_yaml

    assert yamlfile._Loader is yaml.CSafeLoader  # PyYAML's wheels carry libyaml
    files = sorted((Path(__file__).resolve().parents[2] / "config").glob("*.yaml"))
    assert any(f.name == "intents-corpus.yaml" for f in files)
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert load_yaml(text) == yaml.safe_load(text), path.name
