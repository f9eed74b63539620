"""Categories come from the config: the files that name them must agree (what ``ivr
check-config`` reports, file and key), and a work order takes any category its config declares
and no other (``ivr.categories``, ``workorders.model.Policy.categories``)."""

from __future__ import annotations

import shutil
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ivr.categories import categories_of
from ivr.config import DEFAULT_CONFIG_DIR, ConfigError, HotlineConfig, load_config
from ivr.menu import MenuOption
from ivr.speech import schema as intents_schema
from routing.schema import URGENCIES
from workorders.model import (
    Category,
    Event,
    Policy,
    UnknownCategory,
    Urgency,
    WorkOrder,
    WorkOrderError,
    apply,
    create_order,
)
from workorders.schema import ResponseTargets, WorkOrdersConfig

NEW = "billing-dispute"
T0 = 1_800_000_000.0


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """The shipped files with the Korean line switched on, so both intents files count."""
    target = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, target)
    edit(target, "menus.yaml", lambda data: data.update(languages={"ko": {"entry": "main-ko"}}))
    return target


def edit(directory: Path, name: str, change: Callable[[Any], None]) -> None:
    path = directory / name
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True))


def declare(data: Any) -> None:
    data["categories"][NEW] = {"urgency": "important", "keywords": {"dispute": 2.0}}


def route(data: Any) -> None:
    data["rules"][NEW] = {"queue": "billing"}


def problems(directory: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(directory, environ={})
    return caught.value.problems


def loaded(directory: Path) -> HotlineConfig:
    return load_config(directory, environ={})


def test_a_declared_and_routed_category_loads_and_is_a_work_order_category(config_dir):
    """A category in both intents files with a routing rule (no menu key needed) loads, and
    is one a work order may have; the operator's is not one."""
    edit(config_dir, "intents.yaml", declare)
    edit(config_dir, "intents.ko.yaml", declare)
    edit(config_dir, "routing.yaml", route)
    categories = categories_of(loaded(config_dir))
    assert categories == {"inquiry", "change", "fault", "complaint", "other", NEW}


def test_a_category_without_a_routing_rule_is_reported_in_each_intents_file(config_dir):
    """A category declared in the intents files but with no rule in routing.yaml is an error
    for each language's file, naming the file, the key and the rule it lacks."""
    edit(config_dir, "intents.yaml", declare)
    edit(config_dir, "intents.ko.yaml", declare)
    assert problems(config_dir) == [
        f"{config_dir / name}: categories.{NEW}: no rule for category {NEW!r} in routing.yaml "
        f"(rules.{NEW}): its calls would queue by the 'other' rule"
        for name in ("intents.yaml", "intents.ko.yaml")
    ]


def test_a_rule_for_an_undeclared_category_is_reported(config_dir):
    """A routing rule for a category no intents file declares is an error (a typo or a
    leftover: no call ever gets that category)."""
    edit(config_dir, "routing.yaml", route)
    assert problems(config_dir) == [
        f"{config_dir / 'routing.yaml'}: rules.{NEW}: category {NEW!r} is not declared in "
        "intents.yaml (categories:): no call is ever classified or keyed that way"
    ]


def test_a_menu_request_for_an_undeclared_category_is_reported(config_dir):
    """A menu key whose request is routed but not declared in intents.yaml (where its urgency
    is) is an error naming the menu option; the rule is reported too."""
    edit(config_dir, "routing.yaml", route)
    edit(config_dir, "menus.yaml",
         lambda data: data["menus"]["main"]["options"].update({"6": {"request": NEW}}))
    assert (
        f"{config_dir / 'menus.yaml'}: menus.main.options.6.request: category {NEW!r} is not "
        "declared in intents.yaml (categories:), where its urgency is"
    ) in problems(config_dir)


def test_a_menu_request_for_the_operator_is_reported(config_dir):
    """``request: operator`` is refused: the operator is a wish, not a category (the option
    to put a caller through is ``operator: true``)."""
    edit(config_dir, "menus.yaml",
         lambda data: data["menus"]["main"]["options"].update({"6": {"request": "operator"}}))
    assert problems(config_dir) == [
        f"{config_dir / 'menus.yaml'}: menus.main.options.6.request: 'operator' is the "
        "operator, not a category: use 'operator: true'"
    ]


def test_the_operator_category_needs_no_routing_rule(config_dir):
    """The intents' operator category has no rule of its own to need: without the
    ``operator`` rule the config still loads."""
    edit(config_dir, "routing.yaml", lambda data: data["rules"].pop("operator"))
    assert "operator" not in loaded(config_dir).routing.rules


def test_a_bad_rule_name_names_the_rule(config_dir):
    """A rule may name any category, but as a name: capitals or spaces are refused with the
    file and key."""
    edit(config_dir, "routing.yaml",
         lambda data: data["rules"].update({"Billing Dispute": {"queue": "billing"}}))
    (problem,) = problems(config_dir)
    assert problem.startswith(f"{config_dir / 'routing.yaml'}: rules:")
    assert "'Billing Dispute'" in problem


def test_every_file_names_the_same_urgencies():
    """Urgencies are a closed set that each file's schema enforces: intents (categories and
    overrides), menu options, routing's urgency_boost and workorders.yaml's response_hours
    all name exactly the work orders' urgencies, so no file can name one another lacks."""
    urgencies = {u.value for u in Urgency}
    assert set(typing.get_args(intents_schema.Urgency)) == urgencies
    option = typing.get_args(MenuOption.model_fields["urgency"].annotation)
    assert {u for arg in option for u in typing.get_args(arg)} == urgencies
    assert set(URGENCIES) == urgencies
    assert set(ResponseTargets.model_fields) == urgencies


def test_a_work_order_takes_any_category_its_policy_knows():
    """With the config's categories in its policy, the model creates and reclassifies orders
    of a new category; the JSON round trip keeps it."""
    policy = WorkOrdersConfig().policy({"other", "fault", NEW})
    order = create_order("1", "c1", "5550100", "Caller", T0, policy, category=NEW)
    assert order.category == NEW and order.category.value == NEW
    assert WorkOrder.from_json(order.to_json()) == order
    moved = apply(order, Event.UPDATE, T0 + 1, "agent101", policy, category="fault")
    assert moved.category == "fault" and moved.history[-1].details == {"category": "fault"}


def test_an_unknown_category_is_refused_naming_it_and_where_categories_are():
    """A well-formed category the policy does not know is refused, naming the category, the
    known ones and the files that declare categories; the shipped policy knows the shipped
    categories only."""
    with pytest.raises(UnknownCategory) as refused:
        create_order("1", "c1", "5550100", "Caller", T0, Policy(), category=NEW)
    assert str(refused.value) == (
        f"category={NEW!r}: not a category of the loaded config (known: change, complaint, "
        "fault, inquiry, other); categories are declared in intents.yaml (categories:), each "
        "with a rule in routing.yaml (rules:)"
    )


@pytest.mark.parametrize("name", ["Fault", "two words", "", 7, None])
def test_a_malformed_category_is_refused(name):
    """A category is a lowercase name; anything else is refused as a bad value."""
    with pytest.raises(WorkOrderError, match="category"):
        create_order("1", "c1", "5550100", "Caller", T0, Policy(), category=name)


def test_a_policy_without_the_fallback_category_is_refused():
    """``other`` is where unmatched calls go: a policy without it cannot exist."""
    with pytest.raises(WorkOrderError, match="'other' is required"):
        Policy(categories=frozenset({"fault"}))


def test_the_shipped_categories_stay_importable():
    """``Category`` keeps the shipped names as constants, equal to their strings."""
    assert [Category.INQUIRY, Category.CHANGE, Category.FAULT, Category.COMPLAINT,
            Category.OTHER] == ["inquiry", "change", "fault", "complaint", "other"]

