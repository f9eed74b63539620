"""The callers' side of a fault campaign: place simulated callers, record what each one hears,
and follow them through Asterisk's own events.

Callers are ``caller-sim`` Local channels (asterisk/extensions.conf): ``<id>`` runs the hotline,
``<id>-caller`` the caller's script. The ear listens where a SIP phone would: an ARI snoop on
the hotline half ``<id>`` with ``spy=out``, the audio Asterisk sends on that channel (for a
PJSIP caller, what goes out over RTP), recorded to a WAV. Not ``spy=in`` on ``<id>-caller``:
that half receives the prompts but not the hold music while it sits in ``Wait()`` under
``transmit_silence``, so it heard music on hold as dead air. The recording runs in real time,
a stretch where the service sends nothing included (:mod:`.hearing`; the e2e check
``test_the_ear_hears_what_the_phone_hears`` pins both down). Asterisk's ``Dial`` events (an ARI
application subscribed to everything) say when a human (an agent or the operator) answered
each caller, and ``ChannelDestroyed`` when and why the call ended: Asterisk's view,
independent of the service and of Redis, which is what a fault takes away.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websocket

from benchmarks.load.faults.hearing import DeadAir, heard_sound, longest_silence, wav_levels
from testbed.asterisk import Asterisk, AsteriskFailed

APP = "faults-ear"
HUMANS = ("PJSIP/agent", "PJSIP/operator")


@dataclass
class CallTrace:
    """One simulated caller, as Asterisk and the caller's own ears saw the call."""

    call_id: str
    number: str
    script: str
    placed_at: float
    recording_at: float | None = None
    answered_at: float | None = None
    answered_by: str | None = None
    ended_at: float | None = None
    cause: str | None = None
    dials: list[str] = field(default_factory=list)

    @property
    def reached_human(self) -> bool:
        return self.answered_by is not None

    @property
    def reached_agent(self) -> bool:
        return (self.answered_by or "").startswith("PJSIP/agent")


class Ear:
    """An ARI application that places callers, snoops on them and collects Dial events."""

    def __init__(self, asterisk: Asterisk) -> None:
        self.asterisk = asterisk
        self.calls: dict[str, CallTrace] = {}
        self._lock = threading.Lock()
        self._socket: Any = None
        self._thread: threading.Thread | None = None
        self._connected = threading.Event()

    # --- the event stream -------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> Ear:
        """Connect the ARI application (it reconnects by itself after an Asterisk restart)."""
        token = base64.b64encode(
            f"{self.asterisk.ari_user}:{self.asterisk.ari_password}".encode()).decode()
        url = self.asterisk.ari_url.replace("http://", "ws://") + (
            f"/events?app={APP}&subscribeAll=true")
        self._socket = websocket.WebSocketApp(
            url, header=[f"Authorization: Basic {token}"],
            on_open=lambda _ws: self._connected.set(),
            on_close=lambda *_a: self._connected.clear(),
            on_message=lambda _ws, message: self._on_event(json.loads(message)),
        )
        self._thread = threading.Thread(
            target=self._socket.run_forever, kwargs={"reconnect": 1}, daemon=True,
            name="faults-ear")
        self._thread.start()
        self.wait_connected(timeout)
        return self

    def wait_connected(self, timeout: float) -> None:
        """Wait for the application's connection; Asterisk does not make the directory its
        recordings go to (and a fresh run directory has none)."""
        if not self._connected.wait(timeout):
            raise TimeoutError(f"the ARI application {APP} did not connect in {timeout} s")
        self.recording("x").parent.mkdir(parents=True, exist_ok=True)

    def stop(self) -> None:
        if self._socket is not None:
            self._socket.keep_running = False
            with contextlib.suppress(Exception):
                self._socket.close()
        if self._thread is not None:
            self._thread.join(5)

    def _on_event(self, event: dict[str, Any]) -> None:
        now = time.time()
        kind = event.get("type")
        with self._lock:
            if kind == "Dial":
                trace = self.calls.get(str(event.get("caller", {}).get("id")))
                peer = str(event.get("peer", {}).get("name", ""))
                if trace is None:
                    return
                if not event.get("dialstatus"):
                    trace.dials.append(peer)
                elif (event["dialstatus"] == "ANSWER" and trace.answered_by is None
                      and peer.startswith(HUMANS)):
                    trace.answered_at, trace.answered_by = now, peer.split("-")[0]
            elif kind == "ChannelDestroyed":
                trace = self.calls.get(str(event.get("channel", {}).get("id")))
                if trace is not None and trace.ended_at is None:
                    trace.ended_at, trace.cause = now, str(event.get("cause_txt", ""))

    # --- callers ----------------------------------------------------------------------------
    def place(self, script: str, number: str, name: str = "Fault Caller") -> CallTrace:
        """Place one caller into s@hotline and start recording what it hears."""
        call_id = f"fault-{uuid.uuid4().hex[:12]}"
        trace = CallTrace(call_id, number, script, placed_at=time.time())
        with self._lock:
            self.calls[call_id] = trace
        self.asterisk.ari("POST", "/channels", params={
            "endpoint": "Local/s@caller-sim", "extension": "s", "context": "hotline",
            "priority": "1", "timeout": "30", "channelId": call_id,
            "otherChannelId": f"{call_id}-caller", "callerId": f'"{name}" <{number}>',
        }, body={"variables": {"CALLER_SCRIPT": script}})
        try:
            self.asterisk.ari("POST", f"/channels/{call_id}/snoop", params={
                "spy": "out", "app": APP, "snoopId": f"{call_id}-ear"})
            # The snoop channel enters the Stasis app a moment after its creation: until
            # then ARI answers 409 "Channel not in Stasis application", so ask again briefly.
            for attempt in range(20):
                try:
                    self.asterisk.ari("POST", f"/channels/{call_id}-ear/record", params={
                        "name": call_id, "format": "wav", "ifExists": "overwrite"})
                    break
                except AsteriskFailed as exc:
                    if " 409 " not in str(exc) or attempt == 19:
                        raise
                    time.sleep(0.025)
            trace.recording_at = time.time()
        except AsteriskFailed as exc:
            if " 404 " not in str(exc):
                raise
            # the call ended at once (a fault at its start): nothing to hear, no recording
        return trace

    def recording(self, call_id: str) -> Path:
        return self.asterisk.run_dir / "spool" / "recording" / f"{call_id}.wav"

    def dead_air(self, trace: CallTrace,
                 caller_turns: tuple[tuple[float, float], ...] = ()) -> DeadAir | None:
        """The longest silence the caller heard before a human answered (or the call ended);
        None without a recording."""
        path = self.recording(trace.call_id)
        if trace.recording_at is None or not path.exists():
            return None
        levels = wav_levels(path.read_bytes())
        end = trace.answered_at or trace.ended_at
        until = None if end is None else end - trace.placed_at
        return longest_silence(levels, lead_s=trace.recording_at - trace.placed_at,
                               until_s=until, caller_turns=caller_turns)

    def heard_anything(self, trace: CallTrace) -> bool:
        path = self.recording(trace.call_id)
        return path.exists() and heard_sound(wav_levels(path.read_bytes()))

    def ended(self, traces: list[CallTrace]) -> bool:
        with self._lock:
            return all(t.ended_at is not None for t in traces)
