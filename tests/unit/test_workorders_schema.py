"""config/workorders.yaml and its schema: defaults, the policy it yields, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from redis.asyncio import Redis

from privacy.testing import random_field_cipher
from workorders.model import Policy, Urgency
from workorders.schema import WorkOrdersConfig
from workorders.store import WorkOrderStore

CONFIG = Path(__file__).resolve().parents[2] / "config" / "workorders.yaml"


def test_shipped_file_is_valid_and_is_the_standard():
    """The shipped config validates and gives the operator's standard: 1 h / 24 h / 48 h,
    assignment within 2 h, three years of retention (the model's own defaults)."""
    config = WorkOrdersConfig.model_validate(yaml.safe_load(CONFIG.read_text()))
    assert config.policy() == Policy()
    assert config.policy().response[Urgency.URGENT] == 3600


def test_policy_converts_hours_to_seconds():
    """Hours in the file become the seconds the pure model works in."""
    config = WorkOrdersConfig.model_validate(
        {"response_hours": {"urgent": 0.5, "important": 8, "normal": 72},
         "assign_within_hours": 1.5, "retention_years": 10}
    )
    policy = config.policy()
    assert policy.response == {
        Urgency.URGENT: 1800, Urgency.IMPORTANT: 8 * 3600, Urgency.NORMAL: 72 * 3600
    }
    assert (policy.assign_within, policy.retention_years) == (5400, 10)


def test_retention_below_three_years_names_key_and_reason():
    """retention_years under 3 is refused with the key and the reason in the message."""
    with pytest.raises(ValidationError) as error:
        WorkOrdersConfig.model_validate({"retention_years": 2})
    (problem,) = error.value.errors()
    assert problem["loc"] == ("retention_years",)
    assert "at least 3 years" in problem["msg"]


@pytest.mark.parametrize(
    "data",
    [
        {"response_hours": {"urgent": 0}},
        {"response_hours": {"critical": 1}},
        {"assign_within_hours": -1},
        {"retention_year": 5},
        {"spool": {"applied_op_ttl_days": 0}},
        {"redis_timeout_s": 0},
    ],
)
def test_typos_and_impossible_values_are_refused(data):
    """Unknown keys (a typo) and zero or negative targets fail validation at load."""
    with pytest.raises(ValidationError):
        WorkOrdersConfig.model_validate(data)


def test_store_from_config_uses_policy_and_spool_subdirectory(tmp_path):
    """The service hands its spool root: work orders spool into <root>/workorders, or into
    spool.dir when the config names one; the store's policy is the config's."""
    config = WorkOrdersConfig.model_validate({"response_hours": {"urgent": 0.5}})
    store = WorkOrderStore.from_config(
        Redis(), config, spool_dir=tmp_path, prefix="x:", cipher=random_field_cipher()
    )
    assert (tmp_path / "workorders").is_dir() and not store.spool_pending
    assert store.policy == config.policy() and store.prefix == "x:"
    named = WorkOrdersConfig.model_validate({"spool": {"dir": str(tmp_path / "elsewhere")}})
    WorkOrderStore.from_config(Redis(), named, spool_dir=tmp_path, cipher=random_field_cipher())
    assert (tmp_path / "elsewhere").is_dir()
