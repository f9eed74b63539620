"""``ivr serve`` on a Redis Cluster: the router writes its events to the ``{rt}`` outbox and
the service runs the outbox relay every ``relay_interval_s``; on one Redis neither."""

from __future__ import annotations

import shutil
from pathlib import Path

from twisted.internet import task

from hotline.service import Hotline
from ivr.config import DEFAULT_CONFIG_DIR, HotlineConfig, load_config
from privacy.testing import random_field_cipher

SHIPPED = 'redis:\n  url: redis://127.0.0.1:6379/0\n  key_prefix: "hotline:"\n'
CLUSTER = ('redis:\n  key_prefix: "hotline:"\n  cluster:\n'
           '    nodes: ["127.0.0.1:7001", "127.0.0.1:7002"]\n    relay_interval_s: 0.5\n')


def config(tmp_path: Path, redis_section: str) -> HotlineConfig:
    target = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, target)
    service = target / "service.yaml"
    assert SHIPPED in service.read_text()
    service.write_text(service.read_text().replace(SHIPPED, redis_section))
    for intents in target.glob("intents*.yaml"):  # speech off: no model to load
        text = intents.read_text()
        if "\nspeech:\n" in text:
            intents.write_text(text.replace("\nspeech:\n", "\nspeech:\n  enabled: false\n", 1))
    return load_config(target, environ={"HOTLINE_ARI_PASSWORD": ""})


def test_on_a_cluster_the_router_uses_its_outbox_and_the_relay_runs(tmp_path: Path) -> None:
    """A ``cluster`` section: routing's events key is ``hotline:outbox:{rt}``, ``rt`` is
    among the relay's tags, and one more loop runs at ``relay_interval_s`` (nothing is sent
    to Redis before the first round: the cluster client connects on first use)."""
    clock = task.Clock()
    hotline = Hotline(config(tmp_path, CLUSTER), clock, cipher=random_field_cipher())
    assert hotline.router.events_key == "hotline:outbox:{rt}"
    assert "rt" in hotline.outbox_tags()
    relay = hotline._relay_job()
    assert relay is not None
    relay_loop = hotline.jobs.start(relay)
    assert relay_loop.interval == 0.5
    relay_loop.stop()


def test_on_one_redis_events_go_to_the_stream_and_no_relay_runs(tmp_path: Path) -> None:
    """The shipped ``url`` form: routing writes to ``hotline:events`` directly, no relay."""
    hotline = Hotline(config(tmp_path, SHIPPED), task.Clock(), cipher=random_field_cipher())
    assert hotline.router.events_key == "hotline:events"
    assert hotline._relay_job() is None
