"""A CTranslate2 model file (``model.bin``) read as named arrays, and written back with some
of them replaced: how a fine-tuned Whisper goes back into the format faster-whisper loads.

CTranslate2's Python package writes this format (``ctranslate2.specs.ModelSpec._serialize``)
but has no reader. The layout, as that writer lays it out: the binary version, the spec's
name and revision, the variables (each a name, its shape, a type id and its bytes), then the
aliases (a name that stands for another variable: Whisper's output projection is its token
embedding). Strings are a uint16 length counting a closing NUL, then the bytes and the NUL.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# CTranslate2's DataType enum (include/ctranslate2/types.h), in its order.
DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16)


@dataclass
class ModelFile:
    """The parsed file: ``variables`` in the file's order (views into ``data``)."""

    version: int
    spec: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]
    data: bytes = field(repr=False)
    # where each variable's bytes start in ``data``
    offsets: dict[str, int] = field(repr=False, default_factory=dict)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> int:
        (value,) = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return int(value)

    def string(self) -> str:
        n = self.take("H")
        text = self.data[self.pos:self.pos + n - 1].decode("utf-8")
        self.pos += n
        return text


def read(path: Path) -> ModelFile:
    """Every variable of the model file at ``path``."""
    data = Path(path).read_bytes()
    r = _Reader(data)
    version = r.take("I")
    spec = r.string()
    revision = r.take("I")
    variables: dict[str, np.ndarray] = {}
    offsets: dict[str, int] = {}
    for _ in range(r.take("I")):
        name = r.string()
        shape = [r.take("I") for _ in range(r.take("B"))]
        type_id = r.take("B")
        size = r.take("I")
        if type_id >= len(DTYPES):
            raise ValueError(f"{path}: {name}: unknown type id {type_id}")
        dtype = np.dtype(DTYPES[type_id])
        if size != dtype.itemsize * int(np.prod(shape, dtype=np.int64)):
            raise ValueError(f"{path}: {name}: {size} bytes for shape {shape} of {dtype}")
        offsets[name] = r.pos
        variables[name] = np.frombuffer(data, dtype, size // dtype.itemsize, r.pos).reshape(shape)
        r.pos += size
    aliases = {}
    for _ in range(r.take("I")):
        alias = r.string()
        aliases[alias] = r.string()
    if r.pos != len(data):
        raise ValueError(f"{path}: {len(data) - r.pos} bytes past the last alias")
    return ModelFile(version, spec, revision, variables, aliases, data, offsets)


def write(model: ModelFile, path: Path, replaced: dict[str, np.ndarray]) -> None:
    """``model`` written to ``path`` with the arrays of ``replaced`` in place of its own, each
    cast to the variable's type; a name the file lacks, or another shape, is refused."""
    out = bytearray(model.data)
    for name, value in replaced.items():
        if name not in model.variables:
            raise KeyError(f"{name}: not a variable of the model")
        old = model.variables[name]
        if tuple(value.shape) != old.shape:
            raise ValueError(f"{name}: shape {tuple(value.shape)}, the model's is {old.shape}")
        start = model.offsets[name]
        out[start:start + old.nbytes] = np.ascontiguousarray(value, dtype=old.dtype).tobytes()
    Path(path).write_bytes(bytes(out))
