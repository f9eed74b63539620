"""Where request categories are declared, and how the config files must agree on them.

A category is declared once, in ``intents.yaml`` (``categories.<name>``, with its urgency and
what callers say for it); every language's ``intents.<code>.yaml`` has the same names
(``ivr.languages`` checks that). The other files refer to categories:

- ``routing.yaml`` ``rules.<name>``: where calls of the category queue;
- ``menus.yaml`` ``options.<key>.request``: the category a DTMF choice stands for;
- the work order's ``category`` (``workorders.model.Policy.categories``).

Checked here, each mismatch a ``file: key: reason`` line of ``ivr check-config``:

- a category of an intents file (each language) without a routing rule is an error: its
  calls would silently queue by the ``other`` rule, which is never what adding one meant;
- a routing rule whose category no intents file declares is an error: no call is ever
  classified or keyed that way, so it is a typo or a leftover;
- a menu option whose request is not declared in intents.yaml is an error (its urgency and
  its confirmation come from there), and so is one that names the operator category
  (``operator: true`` is how a menu puts the caller through);
- fine: ``operator`` (``intents.operator_category``, and the ``operator`` rule, whose queue
  is the operator) is a wish, not a category: it needs no rule and no order ever has it (the
  flow files such calls as ``other``); ``other`` is the fallback, required in routing.yaml
  (``routing.schema``) and in intents.yaml like any category.

Urgencies are a closed set (urgent, important, normal): intents.yaml, menus.yaml,
routing.yaml's ``urgency_boost`` and workorders.yaml's ``response_hours`` each refuse any other
name in their own schema, so they agree by construction (a unit test holds the four schemas to
``workorders.model.Urgency``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from workorders.model import Category

if TYPE_CHECKING:
    from ivr.config import HotlineConfig
    from ivr.languages import Language
    from ivr.menu import MenusConfig
    from ivr.speech.schema import IntentsConfig
    from routing.core import RoutingConfig

#: The routing rule (and queue) of calls put through to the operator (``routing.core``).
OPERATOR = "operator"


def work_order_categories(
    intents: Iterable[IntentsConfig], routing: RoutingConfig
) -> frozenset[str]:
    """The categories a work order may have: those of the intents files (every language)
    and of the routing rules, less the operator's; ``other`` always."""
    files = list(intents)
    declared = {name for file in files for name in file.categories}
    operators = {OPERATOR, *(file.operator_category for file in files)}
    return frozenset((declared | set(routing.rules)) - operators | {Category.OTHER.value})


def categories_of(cfg: HotlineConfig) -> frozenset[str]:
    """:func:`work_order_categories` of a loaded config (every language it has)."""
    intents = [language.intents for language in cfg.languages.values()] or [cfg.intents]
    return work_order_categories(intents, cfg.routing)


def category_problems(
    directory: Path,
    languages: Mapping[str, Language],
    menus: MenusConfig,
    routing: RoutingConfig,
) -> list[str]:
    """Every disagreement between the files on categories (see the module docstring)."""
    problems: list[str] = []
    default = next((lang for lang in languages.values() if lang.default), None)
    if default is None:
        return problems
    rules = set(routing.rules)
    for language in languages.values():
        intents = language.intents
        for name in intents.categories:
            if name != intents.operator_category and name not in rules:
                problems.append(
                    f"{directory / language.file('intents')}: categories.{name}: no rule for "
                    f"category {name!r} in routing.yaml (rules.{name}): its calls would "
                    "queue by the 'other' rule"
                )
    declared = set(default.intents.categories)
    operators = {OPERATOR, default.intents.operator_category}
    for name in routing.rules:
        if name not in declared and name not in operators:
            problems.append(
                f"{directory / 'routing.yaml'}: rules.{name}: category {name!r} is not "
                "declared in intents.yaml (categories:): no call is ever classified or "
                "keyed that way"
            )
    for menu_name, menu in menus.menus.items():
        for key, option in menu.options.items():
            where = f"{directory / 'menus.yaml'}: menus.{menu_name}.options.{key}.request"
            if option.request is None:
                continue
            if option.request in operators:
                problems.append(
                    f"{where}: {option.request!r} is the operator, not a category: "
                    "use 'operator: true'"
                )
            elif option.request not in declared:
                problems.append(
                    f"{where}: category {option.request!r} is not declared in intents.yaml "
                    "(categories:), where its urgency is"
                )
    return problems
