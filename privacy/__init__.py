"""Personal data at rest: master keys, data keys, sealed fields, blind index, masked logs.

- :mod:`privacy.keys`: ``KeyRing``, the master keys by version (``HOTLINE_MASTER_KEY`` or
  ``service.yaml`` ``keys.master_key_file``); a missing or bad key is ``MasterKeyError``;
- :mod:`privacy.datakeys`: ``DataKeys``, named data keys kept wrapped in Redis
  (``<prefix>keys:<name>``), created on first use, re-wrapped by ``ivr keys rotate``;
- :mod:`privacy.fields`: ``FieldCipher``, AES-256-GCM per field value bound to its order and
  field, and the keyed blind index of caller numbers;
- :mod:`privacy.masking`: caller numbers and names as logs show them;
- :mod:`privacy.envelope`: the one AES-256-GCM envelope (recordings use it too);
- :mod:`privacy.cli`: ``ivr keys init|check|rotate``.
"""

from privacy.datakeys import DataKey, DataKeyError, DataKeys
from privacy.fields import FieldCipher, SealedFieldError
from privacy.keys import KeyRing, MasterKey, MasterKeyError, PrivacyError
from privacy.masking import mask_name, mask_number

__all__ = [
    "DataKey",
    "DataKeyError",
    "DataKeys",
    "FieldCipher",
    "KeyRing",
    "MasterKey",
    "MasterKeyError",
    "PrivacyError",
    "SealedFieldError",
    "mask_name",
    "mask_number",
]
