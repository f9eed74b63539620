"""The benchmark menu walk every server runs."""

from __future__ import annotations

from benchmarks.agi.flow import MAIN_MENU, Step, walk


def drive(*presses: str | None) -> list[Step]:
    """Run the walk, answering its GET DATA steps with `presses` in turn."""
    flow = walk()
    steps = [next(flow)]
    answers = list(presses)
    while True:
        digits = answers.pop(0) if steps[-1].action == "get_data" else None
        try:
            steps.append(flow.send(digits))
        except StopIteration:
            return steps


def test_faults_submenu_walk_sends_eleven_commands():
    """3 then 2: eleven commands, the verdict in channel variables, the topic's confirmation."""
    steps = drive("3", "2")
    assert len(steps) == 11
    assert [s.action for s in steps[:4]] == ["answer", "stream_file", "get_data", "get_data"]
    assert Step("set_variable", ("HOTLINE_CATEGORY", "faults")) in steps
    assert Step("set_variable", ("HOTLINE_URGENCY", "high")) in steps
    assert Step("set_variable", ("HOTLINE_MENU_PATH", "3-2")) in steps
    assert Step("stream_file", ("hotline/confirm-slow-internet", "")) in steps
    assert steps[-2] == Step("set_variable", ("HOTLINE_NEXT", "queue"))


def test_two_failed_reads_go_to_the_operator():
    """No input, then an invalid digit: the caller goes to the operator without a submenu."""
    steps = drive(None, "9")
    reads = [s for s in steps if s.action == "get_data"]
    assert [r.args[0] for r in reads] == [MAIN_MENU, MAIN_MENU]
    assert Step("set_variable", ("HOTLINE_NEXT", "operator")) in steps
    assert Step("set_variable", ("HOTLINE_MENU_PATH", "operator")) in steps


def test_agi_lines_are_plain_agi():
    """Each step renders as the AGI command a raw-text server sends."""
    assert Step("answer").agi_line() == "ANSWER"
    assert Step("stream_file", ("hotline/welcome", "")).agi_line() == (
        'STREAM FILE hotline/welcome ""'
    )
    assert Step("get_data", (MAIN_MENU, 5000, 1)).agi_line() == (
        "GET DATA hotline/main-menu 5000 1"
    )
    assert Step("set_variable", ("HOTLINE_QUEUE", "billing")).agi_line() == (
        'SET VARIABLE HOTLINE_QUEUE "billing"'
    )
