"""Sealed personal fields and the blind index (``privacy.fields``), and masked logs
(``privacy.masking``)."""

from __future__ import annotations

import base64
import json
import random

import pytest

from privacy.datakeys import DataKey
from privacy.envelope import new_key, seal, unseal
from privacy.fields import FieldCipher, SealedFieldError, normalize_number
from privacy.masking import mask_name, mask_number
from privacy.testing import InMemoryDataKeys, random_field_cipher
from workorders import personal


def test_a_sealed_field_opens_to_its_value_and_hides_it() -> None:
    """``seal`` gives ``enc1:<version>:<base64>`` text without the value in it, different
    each time; ``open`` gives the value back, verbatim."""
    cipher = random_field_cipher()
    value = 'Kim "${EXTEN}" \\ \n김철수 📞'
    sealed = cipher.seal("call-1", "caller_name", value)
    assert sealed.startswith("enc1:1:") and "Kim" not in sealed
    assert sealed != cipher.seal("call-1", "caller_name", value)
    assert cipher.open("call-1", "caller_name", sealed) == value


def test_a_value_moved_to_another_order_or_field_does_not_open() -> None:
    """The order's call id and the field name are bound: copied elsewhere, it fails."""
    cipher = random_field_cipher()
    sealed = cipher.seal("call-1", "caller_name", "Kim")
    with pytest.raises(SealedFieldError, match="moved from another order or field"):
        cipher.open("call-2", "caller_name", sealed)
    with pytest.raises(SealedFieldError):
        cipher.open("call-1", "transcript", sealed)


@pytest.mark.parametrize("owner", ["1732790000.17", 'a"b\\c', "\u202e김철수 📞", "\x00\n"])
def test_values_sealed_before_and_after_open_both_ways(owner: str) -> None:
    """The cipher keeps one AESGCM per key and builds the associated data without a full
    ``json.dumps``: the bytes stay those of ``json.dumps(["enc1", owner, field])`` under
    the plain envelope, so values sealed before open now and the other way round."""
    key = DataKey("workorders-pii", 1, new_key())
    cipher = FieldCipher(key, DataKey("blind-index", 1, new_key()))
    aad = json.dumps(["enc1", owner, "caller_name"], ensure_ascii=True).encode()
    before = "enc1:1:" + base64.b64encode(seal(key.key, "Kim 📞".encode(), aad)).decode()
    assert cipher.open(owner, "caller_name", before) == "Kim 📞"
    now = cipher.seal(owner, "caller_name", "Lee")
    assert unseal(key.key, base64.b64decode(now.split(":", 2)[2]), aad) == b"Lee"


def test_another_data_key_does_not_open_it() -> None:
    """A cipher with another data key (a wrong key) fails with a clear error, never
    garbage; an unknown data key version is named."""
    sealed = random_field_cipher().seal("call-1", "caller_number", "+821012345678")
    with pytest.raises(SealedFieldError, match="wrong data key"):
        random_field_cipher().open("call-1", "caller_number", sealed)
    newer = FieldCipher(
        DataKey("workorders-pii", 2, new_key()), DataKey("blind-index", 1, new_key())
    )
    with pytest.raises(SealedFieldError, match="version 1, this process holds version 2"):
        newer.open("call-1", "caller_number", sealed)


def test_plaintext_written_before_encryption_reads_as_it_is() -> None:
    """A value without the ``enc1:`` prefix is an order from before: returned unchanged."""
    cipher = random_field_cipher()
    assert cipher.open("call-1", "caller_name", "Kim") == "Kim"
    assert not cipher.is_sealed("Kim") and cipher.is_sealed(cipher.seal("c", "f", "Kim"))


def test_the_blind_index_matches_spellings_of_one_number() -> None:
    """Digits and a leading + decide: spaces and dashes do not; a missing + does; a number
    without digits has no index; another blind-index key gives other indexes."""
    cipher = random_field_cipher()
    assert normalize_number(" +82 10-1234-5678 ") == "+821012345678"
    index = cipher.blind_index("+821012345678")
    assert index == cipher.blind_index("+82 (10) 1234-5678")
    assert index != cipher.blind_index("821012345678")
    assert index is not None and len(index) == 64 and "1234" not in index
    assert cipher.blind_index("anonymous") is None and cipher.blind_index("+") is None
    assert random_field_cipher().blind_index("+821012345678") != index


def test_the_cipher_loads_its_two_data_keys_by_name() -> None:
    """``FieldCipher.load`` asks for ``workorders-pii`` and ``blind-index``."""
    keys = InMemoryDataKeys()
    coro = FieldCipher.load(keys)
    with pytest.raises(StopIteration) as done:
        coro.send(None)
    cipher = done.value.value
    assert set(keys.keys) == {"workorders-pii", "blind-index"}
    assert cipher.open("c", "f", cipher.seal("c", "f", "x")) == "x"


def test_an_order_dict_is_sealed_and_opened_whole() -> None:
    """Every personal value of an order's dict (number, name, transcript, notes and
    transcripts in the history) is sealed; the rest is untouched; opening restores it."""
    cipher = random_field_cipher()
    order = {
        "id": "7", "call_id": "c7", "caller": {"number": "+8210", "name": "Kim"},
        "transcript": "my internet is down", "queue": "faults",
        "history": [
            {"event": "create", "details": {"transcript": "my internet is down", "queue": "q"}},
            {"event": "note", "details": {"text": "called back"}},
        ],
    }
    sealed = personal.seal_order(order, cipher)
    text = repr(sealed)
    for secret in ("+8210", "Kim", "internet", "called back"):
        assert secret not in text
    assert sealed["queue"] == "faults" and sealed["history"][0]["details"]["queue"] == "q"
    assert personal.open_order(sealed, cipher) == order
    assert personal.public_details(order["history"][1]["details"]) == {}


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+821012345678", "+8210****5678"),
        ("01012345678", "0101****5678"),
        ("+82 10-1234-5678", "+8210****5678"),
        ("5550100", "****00"),
        ("", "<none>"),
        ("anonymous", "****"),
    ],
)
def test_numbers_are_masked_for_logs(number: str, masked: str) -> None:
    """First four and last four digits of a long number, the last two of a short one."""
    assert mask_number(number) == masked


def test_names_are_masked_to_initials() -> None:
    """Initials only, at most three words; unprintable first characters become ``?``."""
    assert mask_name("Kim Chul-soo") == "K. C."
    assert mask_name("김철수") == "김."
    assert mask_name("A B C D") == "A. B. C. ..."
    assert mask_name("\u202eEvil name") == "?. n."
    assert mask_name("  ") == "<none>"


def test_a_numbers_digits_are_its_ascii_digits_whatever_else_it_holds():
    """``normalize_number`` keeps exactly the characters the plain form keeps (ASCII
    digits, not other scripts' digits nor superscripts), whatever else the text holds."""
    rng = random.Random(7)
    alphabet = "0123456789+- ()./#*abcxyz\u0660\u0669\u00b2\u2075\uff11\u0967\t\n"
    for _ in range(2000):
        number = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 24)))
        digits = "".join(ch for ch in number if ch.isascii() and ch.isdigit())
        general = "+" + digits if number.strip().startswith("+") and digits else digits
        assert normalize_number(number) == general
