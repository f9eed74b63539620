"""A real Asterisk for one test session or one demo, started from the repository's ``asterisk/``.

Where Asterisk comes from:
    * a host package (``asterisk`` 22+ on the PATH or in /usr/sbin): ``chroot=""``;
    * otherwise the Debian sid chroot that ``scripts/setup-debian.sh`` builds
      (``/opt/hotline/asterisk-sid``, or ``$HOTLINE_ASTERISK_ROOT``), run with ``chroot``.
      It shares the host's network, so both sides meet on 127.0.0.1.
    ``chroot=None`` (the default) picks whichever is there, host first.

One run, one directory (``run_dir``): the chroot's ``/var/lib/hotline/run-<id>`` or, for a host
Asterisk, ``/tmp/hotline-asterisk/run-<id>`` (the last few are kept for post-mortems)::

    etc/      copy of asterisk/*.conf, a generated asterisk.conf, hotline-ari-secret.conf
    run/      control socket (asterisk.ctl): two runs never talk to each other's Asterisk
    log/      messages.log (``log_path``), console.log, cdr-custom/hotline.csv (``cdr_path``)
    lib/ spool/ cache/
    sounds/   writable prompt directory (``sounds_dir``), played as ``asterisk_sounds_dir``

Modules, core sounds and hold music stay where the package put them (astmoddir, astdatadir),
read from the package's own asterisk.conf.

Ports are fixed by ``asterisk/``: SIP 5060/udp and HTTP (ARI) 8088/tcp on 127.0.0.1, so one
Asterisk at a time per network namespace (testbed.netns gives a test run one of its own).
``start()`` first takes that network's lock ``/tmp/hotline-testbed-<network id>.lock`` (waiting
up to ``lock_timeout`` for another test run to finish, instead of failing), then refuses with
``PortBusy`` if either port is still taken (a demo stack, a system Asterisk).

The ARI password is random per run (``ari_password``); ``originate_caller()`` uses ARI to
place a simulated caller (``Local/s@caller-sim`` into ``s@hotline``, docs/contracts.md).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from testbed.netns import network_id

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_DIR = REPO_ROOT / "asterisk"
DEFAULT_CHROOT = "/opt/hotline/asterisk-sid"
SIP_PORT = 5060
HTTP_PORT = 8088
ARI_USER = "hotline"
SETUP_HINT = "run scripts/setup-debian.sh (as root) to install one"
RUNS_KEPT = 5  # old run directories kept for post-mortems; older ones are removed


def lock_path() -> Path:
    """The lock of this network's ports: runs in different network namespaces don't collide."""
    return Path(tempfile.gettempdir()) / f"hotline-testbed-{network_id()}.lock"


class AsteriskNotInstalled(RuntimeError):
    """Neither a host Asterisk 22+ nor the chroot is there."""


class PortBusy(RuntimeError):
    """Something else listens on a port Asterisk needs."""


class AsteriskFailed(RuntimeError):
    """Asterisk did not start, or its CLI did not answer."""


def find_asterisk() -> str:
    """The ``chroot`` argument for the Asterisk installed here: "" for a host Asterisk 22+,
    else the chroot directory; ``AsteriskNotInstalled`` when there is neither."""
    env_root = os.environ.get("HOTLINE_ASTERISK_ROOT")
    if env_root is not None and env_root != "":
        if (Path(env_root) / "usr/sbin/asterisk").exists():
            return env_root
        raise AsteriskNotInstalled(
            f"$HOTLINE_ASTERISK_ROOT={env_root} has no usr/sbin/asterisk: {SETUP_HINT}")
    host = _host_binary()
    if host:
        out = subprocess.run([host, "-V"], capture_output=True, text=True, check=False).stdout
        match = re.search(r"Asterisk (\d+)", out)
        if match and int(match.group(1)) >= 22:
            return ""
    if (Path(DEFAULT_CHROOT) / "usr/sbin/asterisk").exists():
        return DEFAULT_CHROOT
    raise AsteriskNotInstalled(
        f"no Asterisk 22+ on this host and no chroot at {DEFAULT_CHROOT}: {SETUP_HINT}"
    )


def _host_binary() -> str | None:
    return shutil.which("asterisk") or (
        "/usr/sbin/asterisk" if os.access("/usr/sbin/asterisk", os.X_OK) else None
    )


def check_ports_free() -> None:
    """Raise ``PortBusy`` if 127.0.0.1:5060/udp or 127.0.0.1:8088/tcp is taken."""
    for kind, port in ((socket.SOCK_DGRAM, SIP_PORT), (socket.SOCK_STREAM, HTTP_PORT)):
        with socket.socket(socket.AF_INET, kind) as sock:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError as exc:
                proto = "udp" if kind == socket.SOCK_DGRAM else "tcp"
                holder = ""
                with contextlib.suppress(OSError):  # ss (iproute2) only names the culprit
                    holder = subprocess.run(
                        ["ss", "-Hlnp" + ("u" if proto == "udp" else "t"), f"sport = :{port}"],
                        capture_output=True, text=True, check=False,
                    ).stdout.strip()
                raise PortBusy(
                    f"127.0.0.1:{port}/{proto} is in use by {holder or 'another process'} "
                    "(another Asterisk? `python -m testbed down` stops the demo stack)"
                ) from exc


@dataclass(frozen=True)
class SystemDirs:
    """Where the package keeps what a run shares read-only (paths as Asterisk sees them)."""

    moddir: str
    datadir: str
    agidir: str
    sbindir: str


def system_dirs(root: Path) -> SystemDirs:
    """Read the package's asterisk.conf for module and data dirs, checking they exist."""
    found: dict[str, str] = {}
    conf = root / "etc/asterisk/asterisk.conf"
    if conf.exists():
        section = ""
        for raw in conf.read_text(errors="replace").splitlines():
            line = raw.split(";", 1)[0].strip()
            if line.startswith("["):
                section = line[1:].split("]", 1)[0]
            elif section == "directories" and "=>" in line:
                key, value = (part.strip() for part in line.split("=>", 1))
                found[key] = value

    def first(key: str, candidates: list[str], marker: str) -> str:
        for path in [found.get(key, ""), *candidates]:
            if path and (root / path.lstrip("/") / marker).exists():
                return path
        raise AsteriskNotInstalled(f"no Asterisk {key} with {marker} under {root}: {SETUP_HINT}")

    moddir = first(
        "astmoddir",
        ["/usr/lib/x86_64-linux-gnu/asterisk/modules", "/usr/lib/asterisk/modules",
         "/usr/lib64/asterisk/modules", "/usr/lib/aarch64-linux-gnu/asterisk/modules"],
        "res_agi.so",
    )
    datadir = first("astdatadir", ["/usr/share/asterisk", "/var/lib/asterisk"], "sounds")
    return SystemDirs(
        moddir=moddir,
        datadir=datadir,
        agidir=found.get("astagidir", f"{datadir}/agi-bin"),
        sbindir=found.get("astsbindir", "/usr/sbin"),
    )


class Asterisk:
    """One Asterisk process with its own run directory (see the module docstring).

    ``start()`` returns once ``core waitfullybooted`` answers; ``stop()`` asks for
    ``core stop now`` and kills after a grace period.
    """

    def __init__(
        self,
        config_dir: str | Path = DEFAULT_CONFIG_DIR,
        chroot: str | None = None,
        run_dir: str | Path | None = None,
        verbose: int = 3,
    ) -> None:
        self.config_dir = Path(config_dir)
        self.chroot = find_asterisk() if chroot is None else chroot
        self.root = Path(self.chroot) if self.chroot else Path("/")
        if self.chroot and not (self.root / "usr/sbin/asterisk").exists():
            raise AsteriskNotInstalled(f"no Asterisk in the chroot {self.chroot}: {SETUP_HINT}")
        if not self.chroot and not _host_binary():
            raise AsteriskNotInstalled(f"no asterisk binary on this host: {SETUP_HINT}")
        self.verbose = verbose
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{secrets.token_hex(2)}"
        self._own_run_dir = run_dir is None  # only then may old sibling runs be pruned
        if run_dir is not None:
            self.run_dir = Path(run_dir).resolve()
        elif self.chroot:
            self.run_dir = self.root / "var/lib/hotline" / f"run-{run_id}"
        else:
            self.run_dir = Path(tempfile.gettempdir()) / "hotline-asterisk" / f"run-{run_id}"
        if self.chroot and not self.run_dir.is_relative_to(self.root):
            raise ValueError(f"run_dir {self.run_dir} must be inside the chroot {self.root}")
        self.etc_dir = self.run_dir / "etc"
        self.log_dir = self.run_dir / "log"
        # Shared by every run: prompts are synthesized once per machine (cached by text hash),
        # not once per test session.
        self.sounds_dir = self.run_dir.parent / "sounds"
        self.log_path = self.log_dir / "messages.log"
        self.console_path = self.log_dir / "console.log"
        self.cdr_path = self.log_dir / "cdr-custom" / "hotline.csv"
        self.conf_path = self.etc_dir / "asterisk.conf"
        self.ari_password = secrets.token_urlsafe(18)
        self.ami_secret = secrets.token_urlsafe(18)  # AMI (manager.conf): recordings' mute
        self.process: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None

    # --- paths ------------------------------------------------------------------------------
    def inside(self, host_path: str | Path) -> str:
        """The path Asterisk sees for a host path inside its root."""
        if not self.chroot:
            return str(host_path)
        return "/" + str(Path(host_path).resolve().relative_to(self.root.resolve()))

    @property
    def asterisk_sounds_dir(self) -> str:
        """``sounds_dir`` as Asterisk sees it: ``Playback(<this>/<name>)``."""
        return self.inside(self.sounds_dir)

    @property
    def ari_url(self) -> str:
        return f"http://127.0.0.1:{HTTP_PORT}/ari"

    @property
    def ari_user(self) -> str:
        return ARI_USER

    # --- lifecycle --------------------------------------------------------------------------
    def _command(self, *args: str) -> list[str]:
        """The asterisk command line for this run (in the chroot when there is one)."""
        binary = "/usr/sbin/asterisk" if self.chroot else (_host_binary() or "asterisk")
        prefix = ["chroot", str(self.root)] if self.chroot else []
        return [*prefix, binary, "-C", self.inside(self.conf_path), *args]

    def prepare(self) -> None:
        """Write the run directory: config copy, asterisk.conf, ARI and AMI secrets."""
        if self._own_run_dir:
            self._prune_old_runs()
        for sub in ("etc", "run", "log", "log/cdr-custom", "lib", "spool", "cache"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        self.sounds_dir.mkdir(parents=True, exist_ok=True)
        for conf in sorted(self.config_dir.glob("*.conf")):
            if conf.name != "asterisk.conf":
                shutil.copyfile(conf, self.etc_dir / conf.name)
        secret = self.etc_dir / "hotline-ari-secret.conf"
        secret.write_text(f"password = {self.ari_password}\n")
        secret.chmod(0o600)
        ami = self.etc_dir / "hotline-ami-secret.conf"
        ami.write_text(f"secret = {self.ami_secret}\n")
        ami.chmod(0o600)
        dirs = system_dirs(self.root)
        inside = self.inside
        self.conf_path.write_text(
            "; written by testbed/asterisk.py for this run only\n"
            "[directories]\n"
            f"astetcdir => {inside(self.etc_dir)}\n"
            f"astmoddir => {dirs.moddir}\n"
            f"astvarlibdir => {inside(self.run_dir / 'lib')}\n"
            f"astdbdir => {inside(self.run_dir / 'lib')}\n"
            f"astkeydir => {inside(self.run_dir / 'lib')}\n"
            f"astdatadir => {dirs.datadir}\n"
            f"astagidir => {dirs.agidir}\n"
            f"astspooldir => {inside(self.run_dir / 'spool')}\n"
            f"astrundir => {inside(self.run_dir / 'run')}\n"
            f"astlogdir => {inside(self.log_dir)}\n"
            f"astcachedir => {inside(self.run_dir / 'cache')}\n"
            f"astsbindir => {dirs.sbindir}\n"
            "[options]\n"
            f"verbose = {self.verbose}\n"
            "documentation_language = en_US\n"
            "hideconnect = yes\n"
            "nocolor = yes\n"
            # As asterisk/asterisk.conf: a recorded channel gets silence frames while nothing
            # is sent to it (ringing, waits), so the recording keeps the call's time.
            "transmit_silence = yes\n"
        )

    def _prune_old_runs(self) -> None:
        parent = self.run_dir.parent
        if not parent.is_dir():
            return
        runs = sorted(p for p in parent.glob("run-*") if p.is_dir() and p != self.run_dir)
        for old in runs[: max(0, len(runs) - (RUNS_KEPT - 1))]:
            if not (old / "run" / "asterisk.ctl").exists():
                shutil.rmtree(old, ignore_errors=True)

    def _mount_proc(self) -> None:
        proc = self.root / "proc"
        if self.chroot and not (proc / "self").exists():
            proc.mkdir(exist_ok=True)
            subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)

    def _take_lock(self, timeout: float) -> None:
        if self._lock is not None:
            return
        path = lock_path()
        lock = path.open("a")
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    lock.close()
                    raise PortBusy(f"another testbed run holds {path} for over "
                                   f"{timeout} s") from None
                time.sleep(0.2)
                continue
            self._lock = lock
            return

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing drops the flock
            self._lock = None

    def start(self, timeout: float = 30.0, lock_timeout: float = 300.0) -> Asterisk:
        self._take_lock(lock_timeout)
        try:
            return self._start(timeout)
        except BaseException:
            self._release_lock()
            raise

    def _start(self, timeout: float) -> Asterisk:
        check_ports_free()
        self.prepare()
        self._mount_proc()
        console = self.console_path.open("wb")
        self.process = subprocess.Popen(
            self._command("-f", "-n", "-" + "v" * max(1, self.verbose)),
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the test run is not Asterisk's business
        )
        console.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AsteriskFailed(
                    f"Asterisk exited with {self.process.returncode} while starting; "
                    f"see {self.console_path} and {self.log_path}:\n{self._tail()}"
                )
            result = subprocess.run(
                self._command("-rx", "core waitfullybooted"),
                capture_output=True, text=True, timeout=timeout, check=False,
            )
            if result.returncode == 0 and "fully booted" in result.stdout.lower():
                return self
            time.sleep(0.1)
        self.stop()
        raise AsteriskFailed(f"Asterisk did not boot in {timeout} s:\n{self._tail()}")

    def _tail(self, lines: int = 30) -> str:
        text = ""
        for path in (self.console_path, self.log_path):
            if path.exists():
                text += f"--- {path}\n" + "\n".join(
                    path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        try:
            self._stop(timeout)
        finally:
            self._release_lock()

    def _stop(self, timeout: float) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                subprocess.run(self._command("-rx", "core stop now"),
                               capture_output=True, timeout=timeout, check=False)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def cleanup(self) -> None:
        """Stop and remove the run directory."""
        self.stop()
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> Asterisk:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- talking to it ----------------------------------------------------------------------
    def cli(self, command: str, timeout: float = 10.0) -> str:
        """Run one CLI command (``asterisk -rx``) and return its output."""
        result = subprocess.run(self._command("-rx", command),
                                capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise AsteriskFailed(f"CLI {command!r} failed ({result.returncode}): "
                                 f"{result.stderr or result.stdout}")
        return result.stdout

    def log_offset(self) -> int:
        """Current size of messages.log; pass it to ``log_text`` to read what came after."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_text(self, since: int = 0) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(since)
            return log.read().decode(errors="replace")

    def wait_for_log(self, pattern: str, since: int = 0, timeout: float = 10.0) -> re.Match[str]:
        """Poll messages.log (from offset ``since``) until the regex ``pattern`` shows up."""
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(pattern, self.log_text(since))
            if match:
                return match
            if time.monotonic() > deadline:
                raise TimeoutError(f"{pattern!r} not in {self.log_path} after {timeout} s")
            time.sleep(0.05)

    def ari(self, method: str, path: str, params: dict[str, str] | None = None,
            body: object = None, timeout: float = 10.0) -> object:
        """One ARI REST request (blocking; the service has its own client in ivr/ari.py)."""
        url = f"{self.ari_url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        token = base64.b64encode(f"{ARI_USER}:{self.ari_password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise AsteriskFailed(f"ARI {method} {path}: {exc.code} {exc.read()!r}") from exc
        return json.loads(payload) if payload else None

    def originate_caller(
        self,
        script: str = "",
        caller_num: str = "",
        caller_name: str = "",
        context: str = "hotline",
        extension: str = "s",
        variables: dict[str, str] | None = None,
    ) -> str:
        """Place a simulated caller (``Local/s@caller-sim``) into ``extension@context``.

        ``script`` is ``CALLER_SCRIPT`` (``w1|d12|p<path>|h``, docs/contracts.md); caller
        number and name reach the service as ``agi_callerid``/``agi_calleridname``.
        Returns the id of the hotline half of the Local channel pair.
        """
        params = {"endpoint": "Local/s@caller-sim", "context": context,
                  "extension": extension, "priority": "1", "timeout": "30"}
        if caller_num or caller_name:
            name = caller_name.replace('"', "'")
            params["callerId"] = f'"{name}" <{caller_num}>'
        channel = self.ari(
            "POST", "/channels", params=params,
            body={"variables": {"CALLER_SCRIPT": script, **(variables or {})}},
        )
        assert isinstance(channel, dict)
        return str(channel["id"])

    def hangup(self, channel_id: str) -> bool:
        """Hang up one channel; False if it was already gone."""
        try:
            self.ari("DELETE", f"/channels/{urllib.parse.quote(channel_id)}")
        except AsteriskFailed as exc:
            if " 404 " in str(exc):
                return False
            raise
        return True

    def channels(self) -> list[dict[str, object]]:
        """Channels up right now, as ARI lists them."""
        listed = self.ari("GET", "/channels")
        return list(listed) if isinstance(listed, list) else []

    def hangup_all(self) -> None:
        """Hang up every channel (between tests)."""
        self.cli("channel request hangup all")

    def wait_until_idle(self, timeout: float = 10.0) -> None:
        """Return once no channel is up; ``TimeoutError`` (listing them) otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            channels = self.channels()
            if not channels:
                return
            if time.monotonic() > deadline:
                names = ", ".join(str(channel["name"]) for channel in channels)
                raise TimeoutError(f"channels still up after {timeout} s: {names}")
            time.sleep(0.05)
