"""The wiring: one Twisted reactor (asyncio flavour) with every server of the hotline.

``ivr serve`` = FastAGI server (call flows by script name) + AudioSocket server (speech) +
ARI client (events, originate) + Redis (work orders, live routing) + HTTP (:mod:`api`,
/metrics; TLS with ``http.tls``).
Config is loaded once and validated whole; SIGHUP (or a changed file) reloads it whole, and
a bad new config leaves the last good one in force with a clear log line.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, cast

from hotline.jobs import Job, Jobs
from hotline.stalls import Watchdog
from hotline.startup import check_runtime, ensure_prompts, index_upgrade_job

if TYPE_CHECKING:
    from access import Authenticator
    from api.seams import SpooledAuditTrail
    from ivr.config import HotlineConfig
    from routing.core.config import RoutingConfig

log = logging.getLogger(__name__)


def install_reactor() -> Any:
    """Install Twisted's asyncio reactor (once) and return the reactor."""
    if "twisted.internet.reactor" not in sys.modules:
        from twisted.internet import asyncioreactor

        asyncioreactor.install()
    from twisted.internet import reactor

    return reactor


class ConfigHolder:
    """The config in force. Readers call it for the current value; ``reload`` swaps it whole."""

    def __init__(self, cfg: HotlineConfig) -> None:
        self.current = cfg

    def __call__(self) -> HotlineConfig:
        return self.current

    def routing(self) -> RoutingConfig:
        return self.current.routing

    def reload(self) -> bool:
        from ivr.config import ConfigError, load_config

        try:
            new = load_config(self.current.directory)
        except ConfigError as exc:
            log.error(
                "config reload refused, the last good config stays in force:\n  %s",
                "\n  ".join(exc.problems),
            )
            return False
        self.current = new
        log.info("config reloaded from %s", new.directory)
        return True


class HotlineHealth:
    """``GET /health``'s figures from the running service (:class:`api.HealthSource`)."""

    def __init__(self, hotline: Hotline) -> None:
        self.hotline = hotline

    async def redis_ok(self) -> bool:
        try:
            return bool(await self.hotline.redis.ping())
        except Exception:
            return False

    def ari_state(self) -> str:
        ari = self.hotline.ari
        return str(ari.state.value) if ari is not None else "off"

    def calls(self) -> int:
        return len(self.hotline.flow.active)

    def speech_streams(self) -> int | None:
        speech = self.hotline.speech
        return int(speech.server.pool.in_use) if speech is not None else None


class Hotline:
    """Everything ``ivr serve`` runs, started and stopped together.

    ``authenticator`` checks the API's bearer tokens (an :class:`access.Authenticator`, the
    token store) and ``audit`` records reads of personal data and changes (the audit log);
    without them the API refuses every token (:class:`api.NoTokens`) and audit entries go to
    the service log only (:class:`api.LoggedAudit`): closed by default, never open.

    ``cipher`` is the personal-data cipher (``privacy.fields.FieldCipher``), its keys loaded
    before the service starts (:func:`hotline.keys.load_service_keys`): the work-order store
    seals caller numbers, names, transcripts and notes with it. ``redis``: the client the
    token store and the audit log share with the service (default: a new one).
    """

    def __init__(self, cfg: HotlineConfig, reactor: Any, *, cipher: Any,
                 authenticator: Authenticator | None = None,
                 audit: SpooledAuditTrail | None = None, redis: Any = None,
                 session_key: bytes | None = None) -> None:
        from api import LoggedAudit, NoTokens
        from callbacks.flow import CallbackFlow
        from events.relay import OutboxTags
        from hotline.adapters import RouterOnReactor, WorkOrdersOnReactor
        from ivr.categories import categories_of
        from ivr.flows.hotline import HotlineFlow
        from routing.live import ROUTING_TAG, LiveRouter
        from workorders.retention import DailyPurge
        from workorders.store import WorkOrderStore

        self.reactor = reactor
        self.authenticator: Authenticator = authenticator or NoTokens()
        self.audit: SpooledAuditTrail = audit or LoggedAudit()
        self.config = ConfigHolder(cfg)
        svc = cfg.service
        self.redis = redis if redis is not None else service_redis(svc)
        self.workorders = WorkOrderStore.from_config(
            self.redis, cfg.workorders, spool_dir=svc.spool_dir, prefix=svc.redis.key_prefix,
            cipher=cipher, categories=categories_of(cfg),
        )
        self.retention = DailyPurge(
            self.workorders, self.redis, prefix=svc.redis.key_prefix, instance=svc.instance,
            hour_utc=cfg.workorders.retention.purge_hour_utc,
        )
        # On a Redis Cluster each feature's atomic steps write their events to their slot's
        # outbox; the features add those slots' tags here and the relay drains them.
        self.outbox_tags = OutboxTags(ROUTING_TAG)
        self.outbox_tags.add_source(self.workorders.buckets.tags)
        self.router = LiveRouter(
            self.redis, self.config.routing, instance=svc.instance,
            prefix=svc.redis.key_prefix, clock=reactor.seconds, cluster=svc.redis.is_cluster,
            numbers=cipher,
        )
        sounds = svc.asterisk.sounds_dir.rstrip("/")
        self.speech = self._speech(cfg)
        router_on_reactor = RouterOnReactor(self.router)
        workorders_on_reactor = WorkOrdersOnReactor(self.workorders)
        self.flow = HotlineFlow(
            config=self.config,
            workorders=workorders_on_reactor,
            router=router_on_reactor,
            clock=reactor,
            sound=lambda name: f"{sounds}/{name}",
            speech=self.speech,
        )
        self.ari = self._ari(cfg)
        self.telephony = None
        if self.ari is not None:
            from callbacks.telephony import AsteriskTelephony

            self.telephony = AsteriskTelephony(
                self.ari, self.router, f"{svc.agi.host}:{svc.agi.port}",
                workorders=self.workorders,
            )
            self.router.telephony = self.telephony
        self.callback_flow = CallbackFlow(
            router=router_on_reactor, workorders=workorders_on_reactor, clock=reactor
        )
        from ivr.flows.hotline.answer import AssignOnAnswer
        from workorders.backoffice import BackOffice

        # The answering agent takes the call's order at the answer (ARI Dial event).
        self.answer = AssignOnAnswer(self.workorders, self.router.agent_for_device,
                                     reactor.seconds)
        self.backoffice = BackOffice(
            self.workorders, self.redis, self.config.routing,
            lambda: self.config().workorders.backoffice,
            events_maxlen=cfg.workorders.events_maxlen,
        )
        self.recordings = self._recordings(cfg)
        # Capture: MixMonitor from the flow, AMI mutes, the check and ingest after hangup.
        self.recorder = self._recorder(cfg)
        if self.recorder is not None:
            from hotline.adapters import RecorderOnReactor
            from ivr.flows.hotline.record import CallbackRecording

            self.flow.recorder = RecorderOnReactor(self.recorder)
            self.callback_flow.recording = CallbackRecording(self.flow.recorder, reactor)
        self._ports: list[Any] = []
        self.jobs = Jobs(reactor, reactor.seconds, log)  # the repeating tasks, started by start()
        self._purge_call: Any = None  # the next daily retention pass of the recordings
        self.metrics: Any = None  # hotline.metrics.QueueMetrics, registered while serving
        self.order_metrics: Any = None  # hotline.metrics.OrderKpiMetrics, likewise
        self.webhooks: Any = None  # webhooks.deliverer.Webhooks, when webhooks.yaml has any
        self.watcher: Any = None  # hotline.reload.ConfigWatcher on the config directory
        self.watchdog: Watchdog | None = None  # reactor stalls (hotline.stalls)
        self.session_key = session_key  # the screens' sessions and CSRF (access.sessions)
        self.screens: Any = None  # screens.aggregate.Aggregate, once the site is built

    def _speech(self, cfg: HotlineConfig) -> Any:
        from ivr.speech.gateway import SpeechGateway, speech_languages

        if not speech_languages(cfg):
            return None

        sounds = cfg.service.asterisk.sounds_dir.rstrip("/")
        return SpeechGateway.from_config(
            cfg, self.reactor, self.config, lambda name: f"{sounds}/{name}"
        )

    def _recordings(self, cfg: HotlineConfig) -> Any:
        """``recordings.wiring.Recordings``: the capture side calls ``.pipeline.ingest``; the
        API serves ``.library``; ``None`` when ``recordings.yaml`` says ``enabled: false``."""
        if not cfg.recordings.enabled:
            return None
        from access import team_of
        from recordings.wiring import build_recordings

        svc = cfg.service
        return build_recordings(
            cfg.recordings, redis=self.redis, prefix=svc.redis.key_prefix,
            spool_dir=svc.spool_dir, key_file=svc.keys.master_key_file, audit=self.audit,
            teams=lambda agent: team_of(self.config.routing(), agent),
            members=lambda team: [a for a, p in self.config.routing().agents.items()
                                  if p.team == team],
            clock=self.reactor.seconds, order_key=self.workorders.buckets.order_key,
        )

    def _recorder(self, cfg: HotlineConfig) -> Any:
        """``recordings.recorder.CallRecorder`` when recordings are on; its AMI control is
        connected at :meth:`start` (until then, and without an AMI secret, mutes answer False
        and sensitive steps stop the recording instead)."""
        if self.recordings is None:
            return None
        from recordings.alarms import StreamAlarms
        from recordings.control import NoControl
        from recordings.recorder import CallRecorder

        svc = cfg.service
        return CallRecorder(
            settings=lambda: self.config().recordings.capture, control=NoControl(),
            alarms=StreamAlarms(self.redis, svc.redis.key_prefix),
            ingest=self.recordings.pipeline, deletions=self.recordings.catalog,
            clock=self.reactor.seconds, host_root=svc.asterisk.root,
        )

    def _connect_ami(self) -> None:
        svc = self.config().service
        secret = svc.ami_secret()
        if self.recorder is None:
            return
        if not secret:
            log.warning("no AMI secret (HOTLINE_AMI_SECRET or ami.secret_file): recordings "
                        "cannot be muted; sensitive steps stop them instead")
            return
        from recordings.control import AmiControl

        self.recorder.control = AmiControl.connect(svc.ami.host, svc.ami.port, svc.ami.user,
                                                   secret)

    def _ari(self, cfg: HotlineConfig) -> Any:
        password = cfg.service.ari_password()
        if not password:
            log.warning("no ARI password (HOTLINE_ARI_PASSWORD or ari.password_file): ARI is off")
            return None
        from ivr.ari import ARIClient

        return ARIClient(
            cfg.service.ari.url.rstrip("/") + "/ari", cfg.service.ari.user, password,
            app=cfg.service.ari.app, reactor=self.reactor,
        )

    def start(self) -> None:
        from ivr.aio import deferred

        svc = self.config().service
        from ivr.admission import LISTEN_BACKLOG, ensure_descriptors

        short = ensure_descriptors(svc.agi.max_connections + svc.audiosocket.max_connections
                                   + svc.http.max_connections)
        if short:
            log.warning("%s", short)
        self._ports.append(
            self.reactor.listenTCP(svc.agi.port, self.agi_factory(), interface=svc.agi.host,
                                   backlog=LISTEN_BACKLOG)
        )
        if self.speech is not None:
            self._ports.append(self.speech.listen_tcp(self.reactor))
        self._listen_http(svc.http)
        self._connect_ami()
        if self.ari is not None:
            if self.telephony is not None:
                self.ari.subscribe("DeviceStateChanged", self.telephony.on_device_state)
                self.ari.subscribe("ChannelDestroyed", self.telephony.on_channel_destroyed)
                self.ari.subscribe("Dial", self.telephony.on_dial)
            self.ari.subscribe("Dial", self.answer.on_dial)
            self.ari.start()

        self._watched(deferred(self.router.sync_agents()), "agent sync")
        for job in self._jobs_table():
            self.jobs.start(job)
        if svc.stall_warning_ms:
            self.watchdog = Watchdog(self.reactor, svc.stall_warning_ms / 1000)
            self.watchdog.start()
        if self.recordings is not None:
            self._schedule_purge()
        signal.signal(signal.SIGHUP, lambda *_: self.reactor.callFromThread(self.reload))
        from hotline.heapdiff import install_on_signal

        install_on_signal(self.reactor.callFromThread)  # only with PYTHONTRACEMALLOC set
        self._start_ops()
        self._start_webhooks()
        from callbacks.flow import caller_id_notice

        notice = caller_id_notice(self.config.routing())
        if notice:
            log.info("%s", notice)
        log.info(
            "hotline serving: FastAGI %s:%d, HTTP%s %s:%d, instance %s",
            svc.agi.host, svc.agi.port, "S" if svc.http.tls else "", svc.http.host,
            svc.http.port, svc.instance,
        )

    def _jobs_table(self) -> list[Job]:
        """Every repeating task of ``ivr serve``: what, how often, one round. A round that
        returns None had nothing to do (switched off by config, which a reload may change)."""
        backoffice = self.config().workorders.backoffice

        def back_office() -> Coroutine[Any, Any, object] | None:
            # Orders not handled live, assigned on the reactor's clock (exactly once across
            # instances: workorders.backoffice).
            if not self.config().workorders.backoffice.enabled:
                return None
            return self.backoffice.run_once(self.reactor.seconds())

        def daily_purge() -> Coroutine[Any, Any, object] | None:
            # Checked every few minutes; runs once a day across instances (a day lock key).
            settings = self.config().workorders.retention
            if not settings.daily_purge:
                return None
            self.retention.hour_utc = settings.purge_hour_utc  # follows a reload
            return self.retention.run_if_due(self.reactor.seconds())

        jobs = [
            Job("dispatch", 0.25, self.router.dispatch),
            Job("replay", 5.0, self.workorders.replay_spool),
            # Audit entries written while Redis was away join the chain once it is back.
            Job("audit replay", 5.0, self.audit.replay_spool),
            # backoffice.interval_s: a change takes a restart.
            Job("back office", float(backoffice.interval_s), back_office),
            Job("retention purge", 300.0, daily_purge),
            self._escalation_job(),
            # Index sets the orders stored before an upgrade lack, rebuilt once in all.
            index_upgrade_job(self.workorders, self.config().service.instance,
                              self.reactor.seconds),
        ]
        if self.recordings is not None:
            jobs.append(Job("recordings retry", self.recordings.config.retry.every_s,
                            self.recordings.pipeline.retry_pending))
        relay = self._relay_job()
        if relay is not None:
            jobs.append(relay)
        return jobs

    def _escalation_job(self) -> Job:
        """SLA warnings and breaches of work orders, swept on the reactor's clock
        (``workorders.watch``; every instance sweeps, each warning fires once)."""
        from hotline.metrics import count_escalation
        from workorders.watch import EscalationWatch

        config = self.config().workorders
        watch = EscalationWatch.from_config(
            self.redis, self.workorders, config, on_fired=count_escalation
        )
        return Job("escalation", config.escalation.interval_s,
                   lambda: watch.sweep(self.reactor.seconds()))

    def _relay_job(self) -> Job | None:
        """On a Redis Cluster only: the outbox relay (``events.relay``), copying the events
        each slot's atomic steps wrote to its outbox onto ``hotline:events``."""
        from events.relay import OutboxRelay

        svc = self.config().service
        cluster = svc.redis.cluster
        if cluster is None:
            return None
        relay = OutboxRelay(self.redis, self.outbox_tags, consumer=svc.instance,
                            prefix=svc.redis.key_prefix, claim_s=cluster.relay_claim_s)
        return Job("event relay", cluster.relay_interval_s, relay.run_once)

    def _schedule_purge(self) -> None:
        """The daily retention pass of the recordings, at ``purge.at`` (UTC)."""
        from ivr.aio import deferred
        from recordings.purge import purge
        from recordings.wiring import next_purge_at

        recs = self.recordings
        if recs is None or not recs.config.purge.enabled:
            return
        now = self.reactor.seconds()

        def run() -> None:
            d = deferred(purge(recs.catalog, recs.storage, recs.config.retention,
                               self.reactor.seconds()))
            d.addCallback(lambda report: log.info(
                "recordings retention: %d checked, %d deleted, %d on legal hold",
                report.checked, len(report.due), report.held))
            self._watched(d, "recordings purge")
            self._schedule_purge()

        self._purge_call = self.reactor.callLater(
            next_purge_at(now, recs.config.purge.at) - now, run)

    def site(self) -> Any:
        """The HTTP site: the API over this service's router, store, health, token checks and
        audit trail, and prometheus_client's /metrics."""
        from prometheus_client.twisted import MetricsResource

        from api import build_api
        from api.web import make_site
        from hotline.endpoints import http_limits

        api = build_api(
            router=self.router, workorders_store=self.workorders,
            health_source=HotlineHealth(self), authenticator=self.authenticator,
            audit=self.audit, clock=self.reactor.seconds,
            recordings=self.recordings.library if self.recordings is not None else None,
            clock_policy=lambda: self.config().workorders.clock_policy(),
            recorder=self.recorder,
        )
        site = make_site(api, raw={"/metrics": MetricsResource()},
                         limits=http_limits(self.config().service.http), reactor=self.reactor)
        from screens.wiring import attach_screens

        self.screens = attach_screens(site, self, self.session_key)
        return site

    def _listen_http(self, http: Any) -> None:
        from twisted.internet.endpoints import serverFromString

        from api import NoTokens
        from hotline.endpoints import http_endpoint

        if isinstance(self.authenticator, NoTokens):
            log.warning("no token store is wired in: the API refuses every token "
                        "(only /health, /metrics and /api/openapi.json answer)")

        def failed(failure: Any) -> None:
            log.error("HTTP cannot listen on %s:%d: %s", http.host, http.port,
                      failure.getErrorMessage())
            self.reactor.stop()

        from ivr.admission import LISTEN_BACKLOG

        endpoint = f"{http_endpoint(http)}:backlog={LISTEN_BACKLOG}"
        d = serverFromString(self.reactor, endpoint).listen(self.site())
        d.addCallbacks(self._ports.append, failed)

    def _start_ops(self) -> None:
        """Queue gauges and today's work-order KPIs for /metrics (refreshed here, read by the
        scrape thread) and the config-file watcher (the same reload as SIGHUP)."""
        from prometheus_client import REGISTRY

        from api import queue_report
        from hotline.metrics import OrderKpiMetrics, QueueMetrics
        from hotline.reload import ConfigWatcher
        from hotline.report.today import TodayKpis

        self.metrics = QueueMetrics(lambda: queue_report(self.router), self.reactor.seconds)
        # The day's orders read once, then only those changed since the last read.
        today = TodayKpis(self.workorders, lambda: self.config().workorders)
        self.order_metrics = OrderKpiMetrics(
            lambda: today.report(self.reactor.seconds()), self.reactor.seconds)
        # A minute is fresh enough for a day's KPIs: one read of the day's changes a minute.
        for collector, every, what in ((self.metrics, 1.0, "metrics"),
                                       (self.order_metrics, 60.0, "order metrics")):
            REGISTRY.register(collector)
            self.jobs.start(Job(what, every, collector.refresh, now=True))
        self.watcher = ConfigWatcher(self.config().directory, self.reload, clock=self.reactor)
        self.watcher.start()

    def _start_webhooks(self) -> None:
        """The deliverers of ``webhooks.yaml`` (none configured: nothing runs); each reads the
        events through its consumer group, as this instance."""
        from webhooks.deliverer import Webhooks

        cfg = self.config()
        self.webhooks = Webhooks.from_config(
            cfg.webhooks, self.redis, self.reactor, instance=cfg.service.instance,
            prefix=cfg.service.redis.key_prefix, failures=self.jobs.failures_of,
        )
        if self.webhooks is not None:
            self.webhooks.start()

    def reload(self) -> bool:
        from ivr.aio import deferred

        ok = self.config.reload()
        self._watched(deferred(self.audit.record(
            user="system", role="ops", action="config.reload",
            obj=f"config:{self.config().directory}", address="local",
            now=self.reactor.seconds(), details={"result": "applied" if ok else "refused"},
        )), "audit")
        if ok:
            self._follow_categories(self.config())
            self._watched(deferred(self.router.sync_agents()), "agent sync")
            self._reload_speech(self.config())
        return ok

    def _follow_categories(self, cfg: HotlineConfig) -> None:
        """A category added by a reload is routed at once: its orders must be accepted too."""
        from dataclasses import replace

        from ivr.categories import categories_of

        self.workorders.policy = replace(self.workorders.policy, categories=categories_of(cfg))

    def _reload_speech(self, cfg: HotlineConfig) -> None:
        """Changed intents take effect for the next callers: their language's model and
        classifier are rebuilt in a thread while calls go on with the old ones."""
        from twisted.internet.threads import deferToThreadPool

        from ivr.speech.gateway import speech_languages

        if self.speech is None:
            if speech_languages(cfg):
                log.warning("speech was switched on by a config reload: it takes a restart "
                            "(no AudioSocket server is listening); callers get the menu")
            return
        pool = self.reactor.getThreadPool()
        self._watched(self.speech.refresh(
            cfg, lambda build: deferToThreadPool(self.reactor, pool, build)
        ), "speech reload")

    def agi_factory(self) -> Any:
        """The FastAGI server's factory: the call flows by script name, and the limits from
        ``service.yaml``'s ``agi`` section (``command_timeout_s``: how long a command may
        wait for Asterisk's reply before the session is dropped; ``header_timeout_s`` and
        ``max_connections``: README "Hostile input")."""
        from ivr.agi import AGILimits, FastAGIFactory

        agi = self.config().service.agi
        return FastAGIFactory(
            {"hotline": self.flow, "callback": self.callback_flow}, self.reactor,
            limits=AGILimits(
                command_timeout=agi.command_timeout_s, header_timeout=agi.header_timeout_s,
                max_connections=agi.max_connections,
            ),
        )

    def _watched(self, d: Any, what: str) -> Any:
        """``d``'s failure logged as one of ``what``'s repeated failures (Redis away fails
        every round: said once, then summed up), its success ending such a run."""
        return self.jobs.watch(d, what)

    def stop(self) -> Any:
        from twisted.internet import defer

        self.jobs.stop()
        if self._purge_call is not None and self._purge_call.active():
            self._purge_call.cancel()
        if self.watcher is not None:
            self.watcher.stop()
        if self.watchdog is not None:
            self.watchdog.stop()
        if self.metrics is not None:
            from prometheus_client import REGISTRY

            REGISTRY.unregister(self.metrics)
            self.metrics = None
        if self.order_metrics is not None:
            from prometheus_client import REGISTRY

            REGISTRY.unregister(self.order_metrics)
            self.order_metrics = None
        waits = [defer.maybeDeferred(port.stopListening) for port in self._ports]
        if self.recorder is not None and hasattr(self.recorder.control, "close"):
            self.recorder.control.close()  # AMI
        if self.screens is not None:
            from ivr.aio import deferred

            waits.append(deferred(self.screens.stop()))
        if self.webhooks is not None:
            waits.append(self.webhooks.stop())
        if self.ari is not None:
            waits.append(defer.maybeDeferred(self.ari.stop))
        return defer.DeferredList(waits)


def serve(config_dir: str | None = None) -> int:
    """Run until SIGINT/SIGTERM. Exit 2 on a config that does not validate."""
    reactor = install_reactor()
    from twisted.logger import ILogObserver, STDLibLogObserver, globalLogBeginner

    # STDLibLogObserver provides ILogObserver through zope's @implementer, unseen by mypy
    observer = cast(ILogObserver, STDLibLogObserver())
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)

    from ivr.config import ConfigError, load_config

    try:
        cfg = load_config(config_dir)
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("config: %s", problem)
        return 2
    problems = check_runtime(cfg)
    if problems:
        for problem in problems:
            log.error("config: %s", problem)
        return 2
    from access.tokens import TokenStore
    from audit.log import AuditLog
    from hotline.keys import load_service_keys
    from privacy import PrivacyError

    try:
        keys = load_service_keys(cfg)
    except (PrivacyError, OSError, ConnectionError) as exc:
        # Never plaintext instead: no key, no service.
        log.error("keys: %s", exc)
        return 2
    from workorders.buckets import check_count

    # Orders written with another bucket count would be looked for in the wrong buckets.
    wrong_buckets = check_count(cfg.service.redis, cfg.workorders.store.buckets,
                                cfg.service.redis.key_prefix)
    if wrong_buckets:
        log.error("config: %s", wrong_buckets)
        return 2
    ensure_prompts(cfg)
    redis = service_redis(cfg.service)
    prefix = cfg.service.redis.key_prefix
    hotline = Hotline(
        cfg, reactor, cipher=keys.cipher, redis=redis,
        authenticator=TokenStore(redis, keys.token_key, prefix=prefix),
        audit=AuditLog.from_config(redis, cfg.service), session_key=keys.token_key,
    )
    reactor.callWhenRunning(hotline.start)
    reactor.addSystemEventTrigger("before", "shutdown", hotline.stop)
    reactor.run()
    return 0


def service_redis(service: Any) -> Any:
    """The service's Redis client (``service.yaml`` ``redis``: ``url`` or ``sentinel``):
    commands time out after 2 s, so a Redis that hangs is treated like one that is away."""
    from hotline.redisclient import async_redis

    return async_redis(
        service.redis, socket_timeout=2.0, socket_connect_timeout=2.0,
        health_check_interval=10,
    )
