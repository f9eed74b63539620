"""The FastAGI server: one factory, flows chosen by the script name of C{agi://host/<script>}."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import cast

from twisted.internet import defer
from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from ivr.admission import Admission, Refusal, RefusalLog
from ivr.agi import metrics
from ivr.agi._errors import ChannelHungUp
from ivr.agi._protocol import AGILimits, FastAGIProtocol
from ivr.agi._session import AGISession
from ivr.timers import Clock

log = Logger()

Flow = Callable[[AGISession], Awaitable[None]]
SessionEndHook = Callable[[AGISession, "Failure | None"], object]


class FastAGIFactory(Factory):
    """
    Accept FastAGI connections from Asterisk and run the flow named by each one's script.

    How a session ends, and what Asterisk's C{AGISTATUS} becomes:
      - the flow returns: we close; C{SUCCESS} (C{HANGUP} if the caller hung up);
      - the flow raises L{ChannelHungUp}: we close quietly;
      - the flow raises anything else: logged with the call's uniqueid, C{FAILURE};
      - the script has no flow, or the peer breaks the protocol: logged, C{FAILURE}.
    A flow's failure touches only its own connection.

    Connections are capped at C{limits.max_connections}: over the cap (and with no
    connection still in its header to evict, see L{ivr.admission}), a new one is answered
    C{FAILURE} and closed, so Asterisk's dialplan sends that caller to the operator fallback.
    Refusals and protocol errors are counted and logged through one L{RefusalLog}.

    @param flows: script name -> C{async def flow(session)}.
    @param clock: the reactor's time, or a C{task.Clock} in tests.
    @param on_session_end: called with the session and None, or the failure of a flow that
        raised something other than a hangup (tests and the fake Asterisk use it).
    """

    protocol = FastAGIProtocol

    def __init__(
        self,
        flows: Mapping[str, Flow],
        clock: Clock | None = None,
        *,
        limits: AGILimits | None = None,
        on_session_end: SessionEndHook | None = None,
    ) -> None:
        if clock is None:
            from twisted.internet import reactor

            clock = cast(Clock, reactor)  # the reactor module is untyped
        self.flows = flows
        self.clock = clock
        self.limits = limits or AGILimits()
        self.on_session_end = on_session_end
        self.refusals = RefusalLog("agi", clock)
        self.admission = Admission(self.limits.max_connections, self.refusals)

    def buildProtocol(self, addr: IAddress | None) -> Protocol:
        protocol = FastAGIProtocol(
            self.clock, self._session_ready, self.limits,
            refusals=self.refusals, admission=self.admission,
        )
        if not self.admission.admit(protocol, addr):
            return Refusal(b"FAILURE\n")
        protocol.factory = self
        return protocol

    def _session_ready(self, protocol: FastAGIProtocol) -> None:
        metrics.SESSIONS.inc()
        session = AGISession(protocol)
        flow = self.flows.get(session.script)
        if flow is None:
            metrics.UNKNOWN_SCRIPTS.inc()
            log.warn(
                "No call flow for AGI script {script!r} (call {uniqueid}); AGISTATUS=FAILURE",
                script=session.script,
                uniqueid=session.uniqueid,
            )
            protocol.close(failed=True)
            return
        d = defer.maybeDeferred(flow, session)
        d.addBoth(self._flow_ended, protocol, session)

    def _flow_ended(self, result: object, protocol: FastAGIProtocol, session: AGISession) -> None:
        failure: Failure | None = None
        if isinstance(result, Failure):
            if isinstance(result.value, ChannelHungUp):
                log.debug("Call {uniqueid} hung up during {script}", **_ids(session))
            else:
                failure = result
                metrics.FLOW_ERRORS.inc()
                log.failure(
                    "Call flow {script} failed on call {uniqueid}", result,
                    script=session.script, uniqueid=session.uniqueid,
                )
        protocol.close(failed=failure is not None)
        if self.on_session_end is not None:
            self.on_session_end(session, failure)


def _ids(session: AGISession) -> dict[str, str]:
    return {"script": session.script, "uniqueid": session.uniqueid}
