"""The fake Asterisk answers FastAGI commands as res_agi.c does."""

from __future__ import annotations

import random

from benchmarks.agi.fake_asterisk import (
    REPLY_510,
    REPLY_511,
    Caller,
    Channel,
    command_name,
    split_args,
)
from benchmarks.agi.flow import MAIN_MENU


class FixedDraws(random.Random):
    """A random source whose random() returns the given values in turn."""

    def __init__(self, *draws: float) -> None:
        super().__init__(0)
        self._draws = list(draws)

    def random(self) -> float:
        return self._draws.pop(0)


def stays() -> Caller:
    return Caller(hangup_at=None, hangup_in_flight=False)


def test_header_block_is_asterisks():
    """The header names the script and the agi:// request, carries agi_arg_1, ends blank."""
    header = Channel.header(4573, "1764300000.7", "0215550123", 'Kim "JJ"', "bench-menu")
    lines = header.decode().split("\n")
    assert header.endswith(b"\n\n")
    assert "agi_network: yes" in lines
    assert "agi_network_script: bench-menu" in lines
    assert "agi_request: agi://127.0.0.1:4573/bench-menu" in lines
    assert "agi_uniqueid: 1764300000.7" in lines
    assert 'agi_calleridname: Kim "JJ"' in lines
    assert lines[-3] == "agi_arg_1: bench"


def test_split_args_honours_quotes_and_backslashes():
    """Quoted words keep their spaces, backslash escapes the next character, bare words split."""
    assert split_args('SET VARIABLE "A B" "say \\"hi\\" \\\\ ok"') == [
        "SET",
        "VARIABLE",
        "A B",
        'say "hi" \\ ok',
    ]
    assert split_args("GET DATA hotline/main-menu 5000 1") == [
        "GET",
        "DATA",
        "hotline/main-menu",
        "5000",
        "1",
    ]
    assert split_args('"STREAM" "FILE" "x" ""') == ["STREAM", "FILE", "x", ""]


def test_command_name_reads_multi_word_commands_case_insensitively():
    """`stream file`, `GET FULL VARIABLE` and single-word commands are recognised."""
    assert command_name(["stream", "file", "x"]) == "STREAM FILE"
    assert command_name(["GET", "FULL", "VARIABLE", "${X}"]) == "GET FULL VARIABLE"
    assert command_name(["ANSWER"]) == "ANSWER"


def test_live_channel_replies():
    """ANSWER, STREAM FILE, SET VARIABLE and unknown commands get res_agi's replies."""
    channel = Channel(stays(), random.Random(1))
    assert channel.reply("ANSWER") == b"200 result=0\n"
    played = channel.reply('STREAM FILE hotline/welcome ""')
    assert played.startswith(b"200 result=0 endpos=") and played.endswith(b"\n")
    assert channel.media
    assert channel.reply('"SET" "VARIABLE" "HOTLINE_NEXT" "queue"') == b"200 result=1\n"
    assert not channel.media
    assert channel.reply("FROBNICATE now") == REPLY_510
    assert channel.commands == 4


def test_get_data_answers_the_menu_it_hears():
    """The main menu gets the main-menu odds; nothing pressed is `result= (timeout)`."""
    channel = Channel(stays(), FixedDraws(0.0, 0.99, 0.05, 0.5))
    assert channel.reply(f"GET DATA {MAIN_MENU} 5000 1") == b"200 result=1\n"
    assert channel.reply(f"GET DATA {MAIN_MENU} 5000 1") == b"200 result= (timeout)\n"
    assert channel.reply("GET DATA hotline/billing-menu 5000 1") == b"200 result= (timeout)\n"
    sub = channel.reply("GET DATA hotline/billing-menu 5000 1")
    assert sub in (b"200 result=1\n", b"200 result=2\n", b"200 result=3\n")


def test_hangup_during_a_prompt():
    """The command in flight fails with result=-1, HANGUP follows, live commands then get 511
    while SET VARIABLE is still allowed on the dead channel."""
    channel = Channel(Caller(hangup_at=1, hangup_in_flight=True), random.Random(1))
    channel.reply("ANSWER")
    assert channel.reply('STREAM FILE hotline/welcome ""') == (b"200 result=-1 endpos=0\nHANGUP\n")
    assert channel.hung_up and not channel.alive
    assert channel.reply(f"GET DATA {MAIN_MENU} 5000 1") == REPLY_511
    assert not channel.media
    assert channel.reply("SET VARIABLE HOTLINE_NEXT done") == b"200 result=1\n"


def test_hangup_after_a_reply():
    """A caller who hangs up between commands: the reply completes, then a bare HANGUP."""
    channel = Channel(Caller(hangup_at=0, hangup_in_flight=False), random.Random(1))
    assert channel.reply("ANSWER") == b"200 result=0\nHANGUP\n"
    assert channel.reply("ANSWER") == REPLY_511


def test_caller_draw_respects_the_hangup_share():
    """No caller hangs up at share 0; every caller does at share 1, at command 1..8."""
    rng = random.Random(3)
    assert all(Caller.draw(rng, 0.0).hangup_at is None for _ in range(100))
    points = [Caller.draw(rng, 1.0).hangup_at for _ in range(100)]
    assert all(point is not None and 1 <= point <= 8 for point in points)
