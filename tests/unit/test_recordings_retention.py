"""Retention of recordings, pure: kept as long as the work order and at least the configured
years after it closes (after the call without an order), rules by category and queue, legal
hold on the recording or its order; the config file validated with file, key and reason; the
purge pass over a catalog (dry run, holds, crypto-erase)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from api.testing import run_now
from ivr.config import ConfigError, load_config
from recordings.purge import purge
from recordings.retention import OrderStanding, RetentionFacts, add_years_to, verdict
from recordings.schema import RecordingsConfig, RetentionSettings
from recordings.testing import MemoryCatalog, MemoryStore, run_inline, sample_meta

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


CALL_END = ts("2026-01-10T12:00:00")
CLOSED = ts("2026-03-01T09:00:00")
POLICY = RetentionSettings()


def facts(**changes) -> RetentionFacts:
    values = dict(recording_id="rec-1", ended_at=CALL_END, category="billing",
                  queue="billing", work_order_id="17", legal_hold=False)
    values.update(changes)
    return RetentionFacts(**values)


def closed(**changes) -> OrderStanding:
    values = dict(status="closed", closed_at=CLOSED, retain_until=ts("2029-01-10T12:00:00"))
    values.update(changes)
    return OrderStanding(**values)


def test_default_keeps_three_years_after_the_order_closes():
    """Default: the recording lives until 3 years after its order closed, not a second less;
    then it is due."""
    order = closed()
    just_before = verdict(facts(), order, POLICY, ts("2029-03-01T08:59:59"))
    assert not just_before.delete and just_before.keep_until == ts("2029-03-01T09:00:00")
    due = verdict(facts(), order, POLICY, ts("2029-03-01T09:00:00"))
    assert due.delete and due.reason == "retention period over (3 years)"


def test_an_open_order_keeps_its_recordings_whatever_the_dates():
    """As long as its work order: an order not closed (in progress, reopened) keeps it."""
    for status in ("pending", "in_progress", "on_hold", "resolved"):
        decided = verdict(facts(), OrderStanding(status, None, None), POLICY,
                          ts("2040-01-01T00:00:00"))
        assert not decided.delete and decided.reason == f"work order 17 is {status}"


def test_the_orders_own_retention_date_is_honoured():
    """An order kept longer than 3 years after its close (its ``retain_until``) keeps its
    recording as long."""
    order = closed(retain_until=ts("2031-06-01T00:00:00"))
    assert not verdict(facts(), order, POLICY, ts("2031-05-31T23:59:59")).delete
    assert verdict(facts(), order, POLICY, ts("2031-06-01T00:00:00")).delete


def test_without_an_order_the_years_count_from_the_call():
    """No order (or one already deleted by its own retention): years after the call."""
    decided = verdict(facts(work_order_id=None), None, POLICY, ts("2029-01-10T11:59:59"))
    assert not decided.delete and decided.keep_until == ts("2029-01-10T12:00:00")
    assert verdict(facts(), None, POLICY, ts("2029-01-10T12:00:00")).delete


def test_rules_by_category_and_queue_most_specific_first():
    """A rule for category and queue beats one for the queue, which beats one for the
    category; anything else gets the default."""
    policy = RetentionSettings.model_validate({"rules": [
        {"category": "billing", "years_after_close": 5},
        {"queue": "complaints", "years_after_close": 7},
        {"category": "billing", "queue": "complaints", "years_after_close": 10},
    ]})
    assert policy.years_for("billing", "billing") == 5
    assert policy.years_for("outage", "complaints") == 7
    assert policy.years_for("billing", "complaints") == 10
    assert policy.years_for("outage", "network") == 3
    decided = verdict(facts(queue="complaints"), closed(), policy, ts("2035-01-01T00:00:00"))
    assert not decided.delete and decided.keep_until == ts("2036-03-01T09:00:00")


def test_legal_hold_on_the_recording_or_its_order_blocks_deletion():
    """A hold keeps a recording long past its date, until released."""
    late = ts("2060-01-01T00:00:00")
    held = verdict(facts(legal_hold=True), closed(), POLICY, late)
    assert not held.delete and held.reason == "legal hold on the recording"
    order_held = verdict(facts(), closed(legal_hold=True), POLICY, late)
    assert not order_held.delete and order_held.reason == "legal hold on work order 17"
    assert verdict(facts(), closed(), POLICY, late).delete


def test_29_february_becomes_1_march():
    """A call on 29 February is kept until 1 March three years on, never a day less."""
    assert add_years_to(ts("2028-02-29T10:00:00"), 3) == ts("2031-03-01T10:00:00")


def test_bad_recordings_yaml_names_file_key_and_reason(tmp_path):
    """``ivr check-config`` refuses a bad recordings.yaml with file, key and reason."""
    folder = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, folder)
    (folder / "recordings.yaml").write_text(
        "format: wav\nretention:\n  years_after_close: 0\n  rules:\n    - years_after_close: 4\n"
        "purge:\n  at: '25:00'\n")
    with pytest.raises(ConfigError) as caught:
        load_config(folder, environ={})
    text = "\n".join(caught.value.problems)
    assert "recordings.yaml" in text
    for key in ("format", "retention.years_after_close", "retention.rules.0", "purge.at"):
        assert key in text, (key, text)
    assert "a rule names a category, a queue or both" in text


def test_the_shipped_file_is_the_defaults_and_a_missing_one_means_defaults(tmp_path):
    """config/recordings.yaml as shipped says what the defaults say; without the file the
    defaults apply (a hotline that does not record still loads)."""
    assert load_config(CONFIG_DIR, environ={}).recordings == RecordingsConfig()
    folder = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, folder)
    (folder / "recordings.yaml").unlink()
    assert load_config(folder, environ={}).recordings == RecordingsConfig()


def test_s3_storage_needs_a_bucket():
    """``storage.kind: s3`` without ``s3.bucket`` is refused at load."""
    with pytest.raises(ValueError, match=r"s3\.bucket"):
        RecordingsConfig.model_validate({"storage": {"kind": "s3"}})


def test_purge_erases_what_is_due_and_keeps_what_is_held():
    """The pass deletes (crypto-erase: metadata with the wrapped key, the object, a
    deletion record) what is due, keeps what is held or still running; a dry run deletes
    nothing and lists the same ids."""
    catalog, store = MemoryCatalog(), MemoryStore()
    due = sample_meta("rec-due", ended_at=CALL_END, work_order_id=None)
    held = sample_meta("rec-held", ended_at=CALL_END, work_order_id="18")
    young = sample_meta("rec-young", ended_at=ts("2028-12-01T00:00:00"), work_order_id=None)
    for meta in (due, held, young):
        run_now(catalog.add(meta))
        store.put(meta.recording_id, b"sealed")
    catalog.orders["18"] = closed(legal_hold=True)
    now = ts("2030-01-01T00:00:00")
    dry = run_now(purge(catalog, store, POLICY, now, dry_run=True))
    assert (dry.checked, dry.due, dry.held, dry.kept) == (3, ["rec-due"], 1, 1)
    assert set(catalog.records) == {"rec-due", "rec-held", "rec-young"}
    done = run_now(purge(catalog, store, POLICY, now, run_blocking=run_inline))
    assert done.due == ["rec-due"]
    assert set(catalog.records) == {"rec-held", "rec-young"}
    assert set(store.objects) == {"rec-held", "rec-young"}
    [record] = catalog.deletions
    assert record["recording_id"] == "rec-due" and record["by"] == "retention"
    assert "agent101" not in str(record) and "c-1" not in str(record)
