"""The config modules import one way: ivr.config -> ivr.languages -> ivr.configfile."""

from __future__ import annotations

import ast
from pathlib import Path

import ivr


def imported_modules(module: str) -> set[str]:
    """Every module ``module``'s source imports, at the top or inside functions."""
    path = Path(ivr.__file__).parent / f"{module.removeprefix('ivr.')}.py"
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_languages_and_configfile_do_not_import_the_config() -> None:
    """ivr.languages reads its files through ivr.configfile, never through ivr.config, and
    ivr.configfile imports neither: no import circle, even inside functions."""
    assert "ivr.config" not in imported_modules("ivr.languages")
    assert {"ivr.config", "ivr.languages"}.isdisjoint(imported_modules("ivr.configfile"))
    assert "ivr.languages" in imported_modules("ivr.config")


def test_config_names_still_import_from_ivr_config() -> None:
    """``from ivr.config import ConfigError, load_config, HotlineConfig`` keeps working, and
    ConfigError is the one class both modules raise."""
    from ivr.config import ConfigError, HotlineConfig, load_config
    from ivr.configfile import ConfigError as FileConfigError

    assert ConfigError is FileConfigError
    assert callable(load_config) and HotlineConfig.__name__ == "HotlineConfig"
