"""``ivr serve`` as a real process, pointed at a testbed stack (for e2e tests and the demo).

The service runs exactly as in production: the ``ivr`` console script, the config directory
(a copy with test overrides when asked), and the environment overrides of ``ivr/config.py``
that aim it at the stack's Redis and Asterisk. Requests to its API carry the bearer token of
``HOTLINE_TOKEN`` or ``HOTLINE_TOKEN_FILE`` (in ``env`` or this process's environment), as
the ``ivr`` commands send it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from hotline.apitoken import api_token, authorization
from testbed.processes import stop_process

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "config"


def config_copy(overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
    """A copy of ``config/`` with ``overrides`` merged in: ``{"queues.yaml": {...}}``."""
    target = Path(tempfile.mkdtemp(prefix="hotline-config-"))
    for path in CONFIG.glob("*.yaml"):
        shutil.copyfile(path, target / path.name)
    for name, patch in (overrides or {}).items():
        data = yaml.safe_load((target / name).read_text()) or {}
        (target / name).write_text(yaml.safe_dump(merge(data, patch), sort_keys=False))
    return target


def merge(base: Any, patch: Any) -> Any:
    """``patch`` merged into ``base`` key by key; anything but a mapping replaces."""
    if isinstance(base, dict) and isinstance(patch, Mapping):
        out = dict(base)
        for key, value in patch.items():
            out[key] = merge(base.get(key), value)
        return out
    return patch


class HotlineService:
    """One ``ivr serve`` process. ``env`` comes from :func:`testbed.stack.service_environment`
    (or is built by the e2e fixtures); ``agi_port``/``http_port`` allow a second instance."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        config_dir: Path | None = None,
        agi_port: int = 4573,
        http_port: int = 8090,
        instance: str = "hotline-1",
        log_path: Path | None = None,
    ) -> None:
        self.config_dir = config_dir or CONFIG
        self.http_port = http_port
        self.agi_port = agi_port
        self.env = {
            **os.environ,
            **env,
            "HOTLINE_CONFIG_DIR": str(self.config_dir),
            "HOTLINE__AGI__PORT": str(agi_port),
            "HOTLINE__HTTP__PORT": str(http_port),
            "HOTLINE__INSTANCE": instance,
            "PYTHONUNBUFFERED": "1",
        }
        self.log_path = log_path or Path(tempfile.mkstemp(prefix=f"{instance}-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 240.0) -> HotlineService:
        """Start and wait until /health answers (the first start builds the prompts)."""
        ivr = Path(sys.executable).with_name("ivr")
        command = [str(ivr)] if ivr.exists() else [sys.executable, "-m", "hotline.cli"]
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        self.process = subprocess.Popen(
            [*command, "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT,
            cwd=REPO, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"ivr serve exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                if self.health().get("redis") is not None:
                    self._ensure_token()
                    return self
            except (OSError, urllib.error.URLError, ValueError):
                pass
            time.sleep(0.05)  # every e2e test starts one: answer as soon as it is up
        self.stop()
        raise RuntimeError(f"ivr serve did not answer in {timeout} s:\n{self.log_tail()}")

    def _ensure_token(self) -> None:
        """An ops token for the API, made as ops make one (``ivr tokens create``) unless the
        environment already names one: the e2e clients (this object, ``ivr call``, ``ivr
        agent``) send it from ``HOTLINE_TOKEN`` in :attr:`env`."""
        if api_token(self.env):
            return
        ivr = Path(sys.executable).with_name("ivr")
        command = [str(ivr)] if ivr.exists() else [sys.executable, "-m", "hotline.cli"]
        made = subprocess.run(
            [*command, "tokens", "create", "--user", "testbed", "--role", "ops",
             "--expires", "1d", "--json"],
            env=self.env, capture_output=True, text=True, timeout=60, check=False, cwd=REPO,
        )
        if made.returncode != 0:
            raise RuntimeError(f"ivr tokens create failed ({made.returncode}): {made.stderr}")
        self.env["HOTLINE_TOKEN"] = json.loads(made.stdout)["token"]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    def headers(self) -> dict[str, str]:
        """The Authorization header of the token in the service's environment, if any."""
        return authorization(api_token(self.env))

    def get(self, path: str) -> Any:
        request = urllib.request.Request(self.url(path), headers=self.headers())
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    def post(self, path: str) -> tuple[int, Any]:
        request = urllib.request.Request(self.url(path), method="POST", data=b"",
                                         headers=self.headers())
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)

    def health(self) -> dict[str, Any]:
        return self.get("/health")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: the service dies mid-call, as in a crash."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def reload(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        stop_process(self.process, 10)
        self.process = None

    def __enter__(self) -> HotlineService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
