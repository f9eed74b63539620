"""The callback policy of a queue, as pure data: which numbers a caller may leave, how often
and how far apart a customer is tried, and what the customer's phone shows when it rings.

Built from the queues' ``callback:`` settings (``routing.schema``); ``routing.core`` re-exports
these names, as a queue's config (``QueueConfig.callback``) holds one.
"""

from __future__ import annotations

from dataclasses import dataclass

from callerid import PRESENTABLE_NUMBER


@dataclass(frozen=True, slots=True)
class CallbackNumber:
    """The number a caller may leave for a callback: ``min_digits`` to ``max_digits`` digits,
    starting with one of ``prefixes`` (any, when empty); the caller has ``retries`` rounds to
    confirm or enter one, each keypress awaited ``timeout_s`` seconds."""

    min_digits: int = 7
    max_digits: int = 15
    prefixes: tuple[str, ...] = ()
    retries: int = 3
    timeout_s: float = 6.0

    def problem(self, number: str) -> str | None:
        """Why ``number`` cannot be called back (None: it can). A caller ID's leading ``+``
        is not counted (keys cannot enter one): the rule applies to the digits after it."""
        digits = number.removeprefix("+")
        if not digits.isascii() or not digits.isdigit():
            return "not only digits"
        if len(digits) < self.min_digits:
            return f"fewer than {self.min_digits} digits"
        if len(digits) > self.max_digits:
            return f"more than {self.max_digits} digits"
        if self.prefixes and not digits.startswith(self.prefixes):
            return f"does not start with {' or '.join(self.prefixes)}"
        return None


@dataclass(frozen=True, slots=True)
class CallbackCallerId:
    """Who the customer's phone shows calling when a callback rings it: ``number`` (digits,
    optional leading ``+``) and an optional display ``name`` (validated by the schema)."""

    number: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class CallbackPolicy:
    """Virtual hold: a waiting caller presses ``key`` to be called back instead, keeping the
    place in line. A callback whose customer does not answer is tried ``attempts`` times in
    all, ``retry_delay_s`` apart (the live shell places them; the core only orders them).
    ``number`` says which numbers the caller may leave (the IVR checks them)."""

    enabled: bool = True
    key: str = "1"
    attempts: int = 3
    retry_delay_s: float = 120.0
    ring_timeout_s: float = 30.0
    number: CallbackNumber = CallbackNumber()
    caller_id: CallbackCallerId | None = None

    def presented(self, dialled_number: str = "") -> CallbackCallerId | None:
        """What the customer's phone shows for a callback: the configured ``caller_id``,
        else the number the caller dialled (the hotline's own, which they recognise and can
        call back) if it is known and presentable; ``None``: nothing known, the customer leg
        keeps the agent leg's caller ID (the customer's own number)."""
        if self.caller_id is not None:
            return self.caller_id
        if PRESENTABLE_NUMBER.match(dialled_number):
            return CallbackCallerId(dialled_number)
        return None
