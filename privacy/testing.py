"""Keys for unit tests: random data keys in memory, the real cipher, no Redis."""

from __future__ import annotations

from privacy.datakeys import DataKey
from privacy.envelope import new_key
from privacy.fields import FieldCipher


class InMemoryDataKeys:
    """``privacy.datakeys.DataKeys``'s reading side: a random key per name, made on first use."""

    def __init__(self) -> None:
        self.keys: dict[str, DataKey] = {}

    async def key(self, name: str) -> DataKey:
        if name not in self.keys:
            self.keys[name] = DataKey(name, 1, new_key())
        return self.keys[name]

    async def get(self, name: str) -> bytes:
        return (await self.key(name)).key


def random_field_cipher() -> FieldCipher:
    """A real :class:`FieldCipher` under fresh random data keys (what one test needs)."""
    return FieldCipher(
        DataKey("workorders-pii", 1, new_key()), DataKey("blind-index", 1, new_key())
    )
