"""More agent softphones than asterisk/pjsip.conf lists (for load runs).

``extra_agents(n)`` names them agent201, agent202... (SIP ports 5171... by
:func:`testbed.softphones.agent_port`, clear of agent101-104, the operator and the callers'
5079-5081); :func:`config_with_agents` writes a copy of ``asterisk/`` whose pjsip.conf also
has their endpoints, for ``Stack(asterisk_config_dir=...)``; :func:`agent_entries` are their
``agents.yaml`` entries (every skill, so any queue can use any of them).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from testbed.asterisk import DEFAULT_CONFIG_DIR
from testbed.softphones import agent_port

FIRST_EXTRA = 201
SKILLS = ("billing", "sales", "network", "complaints", "general")


def extra_agents(count: int) -> list[str]:
    if count > 99:
        raise ValueError("at most 99 extra agents (agent201-agent299)")
    return [f"agent{FIRST_EXTRA + i}" for i in range(count)]


def config_with_agents(names: Iterable[str], target: Path,
                       source: Path = DEFAULT_CONFIG_DIR) -> Path:
    """``source``'s *.conf copied to ``target``, pjsip.conf extended with one endpoint and
    AOR per name (same templates as agent101-104)."""
    target.mkdir(parents=True, exist_ok=True)
    for conf in source.glob("*.conf"):
        shutil.copyfile(conf, target / conf.name)
    sections = ["", "; --- extra agents written by testbed/agentpool.py ---"]
    for name in names:
        sections += [f"[{name}](softphone)", f"aors = {name}", f"[{name}](softphone-aor)",
                     f"contact = sip:{name}@127.0.0.1:{agent_port(name)}", ""]
    with (target / "pjsip.conf").open("a") as pjsip:
        pjsip.write("\n".join(sections))
    return target


def agent_entries(names: Iterable[str], level: int = 3) -> dict[str, dict[str, Any]]:
    """``agents.yaml`` entries for ``names``: every skill at ``level``, English and Korean."""
    return {
        name: {"name": f"Load Agent {name.removeprefix('agent')}", "endpoint": f"PJSIP/{name}",
               "skills": dict.fromkeys(SKILLS, level), "languages": ["ko", "en"],
               "team": "load-desk"}
        for name in names
    }
