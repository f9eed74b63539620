"""Simulated callers: a Local channel that walks a script of waits, DTMF and audio.

``place_test_call`` originates ``Local/s@caller-sim`` into ``s@hotline`` (docs/contracts.md,
"Test callers"). Asterisk makes a pair of channels for it, and checked against Asterisk 22:

- ``;1`` gets ``channelId`` (our ``call_id``) and, once the other half answers, runs
  ``s@hotline``: it is the caller as the hotline sees it, so the FastAGI session's
  ``agi_uniqueid`` is ``call_id``;
- ``;2`` gets ``otherChannelId`` (``<call_id>-sim``) and runs ``s@caller-sim``, the script.

The originate variables are set on ``;1`` and copied by the Local channel to ``;2`` when it is
dialed, so the script reaches caller-sim. The originate's ``callerId`` shows on both halves,
but it is parsed (``"name" <number>``), so a name with quotes or newlines cannot pass through
it. The hotline half therefore gets ``CALLERID(num)`` / ``CALLERID(name)`` written verbatim at
origination (applied after ``callerId``), plus ``CALLER_NUM`` / ``CALLER_NAME``, which
``asterisk/extensions.conf`` copies into the caller ID before the AGI. ``callerId`` carries the
number only, for the caller half's logs.
"""

from __future__ import annotations

import re
from typing import Any

from twisted.internet import defer

# One step of CALLER_SCRIPT. Paths and digits end up as dialplan application arguments in
# caller-sim, so separators (``,`` ``&`` ``|``), ``$``/braces and whitespace are refused.
_STEP = re.compile(
    r"w(\d+(\.\d+)?)"  # wait seconds
    r"|d[0-9A-Da-d*#w]+"  # DTMF digits (w: half-second pause, as SendDTMF knows it)
    r"|p[A-Za-z0-9_./-]+"  # sound file path without extension
    r"|h"  # hang up
)


def caller_script(*steps: str) -> str:
    """Join and check CALLER_SCRIPT steps: ``caller_script("w2", "d1", "h") == "w2|d1|h"``.

    Raises :class:`ValueError` naming the first bad step.
    """
    for step in steps:
        if not _STEP.fullmatch(step):
            raise ValueError(
                f"bad caller script step {step!r}: use w<seconds>, d<digits>, p<path>, or h"
            )
    return "|".join(steps)


def check_caller_script(script: str) -> str:
    """``script`` if every ``|``-separated step is valid, else :class:`ValueError`."""
    if script == "":
        return script
    return caller_script(*script.split("|"))


def simulated_caller_variables(script: str, caller_number: str, caller_name: str) -> dict[str, str]:
    """The channel variables of a simulated call (see the module docstring for why each)."""
    return {
        "__CALLER_SCRIPT": check_caller_script(script),
        "CALLER_NUM": caller_number,
        "CALLER_NAME": caller_name,
        "CALLERID(num)": caller_number,
        "CALLERID(name)": caller_name,
    }


@defer.inlineCallbacks
def place_test_call(
    ari: Any,
    *,
    script: str,
    caller_number: str,
    caller_name: str,
    call_id: str,
    context: str = "hotline",
    extension: str = "s",
    timeout: int = 30,
) -> Any:
    """Originate a simulated caller into the hotline; fires with the hotline-side channel id
    (``call_id``: the FastAGI ``agi_uniqueid`` of the call).

    ``ari`` is an :class:`ivr.ari.ARIClient` (anything with its ``originate``). The caller
    half is ``<call_id>-sim``. Follow the call with ``ChannelDestroyed`` events for ``call_id``
    or :meth:`ARIRest.get_channel`.
    """
    channel = yield ari.originate(
        "Local/s@caller-sim",
        extension=extension,
        context=context,
        priority=1,
        caller_id=f"{caller_number}",
        timeout=timeout,
        variables=simulated_caller_variables(script, caller_number, caller_name),
        channel_id=call_id,
        other_channel_id=f"{call_id}-sim",
    )
    return channel.get("id", call_id)
