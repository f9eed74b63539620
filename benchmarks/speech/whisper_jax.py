"""Whisper's forward pass in JAX on CTranslate2's variables, for fine-tuning (``tune_whisper.py``).

The names are CTranslate2's (``ct2_file.read``): the self-attention's query, key and value
are one fused ``linear_0`` (the key's bias is zero, as Whisper has none), the cross-attention
has its query in ``linear_0`` and key and value fused in ``linear_1``; every block normalizes
before it (pre-norm); the output projection is the token embedding. Checked against
CTranslate2 itself in ``tests/speech/test_whisper_tuning_real.py``: the same encoder output
and the same words.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

Params = dict[str, Any]


def heads(params: Params, side: str) -> int:
    """Attention heads of the encoder or decoder (a variable of the file)."""
    return int(params[f"{side}/num_heads"])


def _norm(x: Any, p: Params, name: str) -> Any:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / jnp.sqrt(var + 1e-5) * p[name + "/gamma"] + p[name + "/beta"]


def _linear(x: Any, p: Params, name: str) -> Any:
    return x @ p[name + "/weight"].T + p[name + "/bias"]


def _gelu(x: Any) -> Any:
    return jax.nn.gelu(x, approximate=False)


def _attend(q: Any, k: Any, v: Any, n_heads: int, mask: Any = None) -> Any:
    batch, lq, dim = q.shape
    lk, d = k.shape[1], dim // n_heads
    q = q.reshape(batch, lq, n_heads, d).transpose(0, 2, 1, 3)
    k = k.reshape(batch, lk, n_heads, d).transpose(0, 2, 1, 3)
    v = v.reshape(batch, lk, n_heads, d).transpose(0, 2, 1, 3)
    w = (q @ k.transpose(0, 1, 3, 2)) / jnp.sqrt(d)
    if mask is not None:
        w = jnp.where(mask, w, -1e9)
    return (jax.nn.softmax(w, -1) @ v).transpose(0, 2, 1, 3).reshape(batch, lq, dim)


def _conv(x: Any, w: Any, b: Any, stride: int) -> Any:
    y = lax.conv_general_dilated(x, w, (stride,), [(1, 1)],
                                 dimension_numbers=("NCH", "OIH", "NCH"))
    return y + b[None, :, None]


def encoder_bottom(p: Params, mel: Any, layers: int, n_heads: int) -> Any:
    """The convolutions, the positions and the first ``layers`` blocks: [batch, 80, frames]
    mel -> [batch, frames / 2, width] (what a fine-tuning that keeps them fixed computes once)."""
    x = _gelu(_conv(mel, p["encoder/conv1/weight"], p["encoder/conv1/bias"], 1))
    x = _gelu(_conv(x, p["encoder/conv2/weight"], p["encoder/conv2/bias"], 2))
    x = x.transpose(0, 2, 1)
    x = x + p["encoder/position_encodings/encodings"][: x.shape[1]]
    return encoder_blocks(p, x, range(layers), n_heads)


def encoder_blocks(p: Params, x: Any, layers: range, n_heads: int) -> Any:
    for i in layers:
        n = f"encoder/layer_{i}"
        h = _norm(x, p, n + "/self_attention/layer_norm")
        q, k, v = jnp.split(_linear(h, p, n + "/self_attention/linear_0"), 3, -1)
        x = x + _linear(_attend(q, k, v, n_heads), p, n + "/self_attention/linear_1")
        h = _norm(x, p, n + "/ffn/layer_norm")
        x = x + _linear(_gelu(_linear(h, p, n + "/ffn/linear_0")), p, n + "/ffn/linear_1")
    return x


def encoder_top(p: Params, x: Any, first: int, layers: int, n_heads: int) -> Any:
    """Blocks ``first`` to the last, and the final norm."""
    return _norm(encoder_blocks(p, x, range(first, layers), n_heads), p, "encoder/layer_norm")


def encoder(p: Params, mel: Any, layers: int, n_heads: int) -> Any:
    return encoder_top(p, encoder_bottom(p, mel, 0, n_heads), 0, layers, n_heads)


def decoder(p: Params, tokens: Any, encoded: Any, layers: int, n_heads: int,
            from_position: int = 0) -> Any:
    """Logits [batch, positions - from_position, vocabulary] of ``tokens`` [batch, positions]
    over ``encoded``; the output projection only from ``from_position`` on (a prompt's own
    positions need none, and the projection is most of the decoder's cost)."""
    length = tokens.shape[1]
    x = p["decoder/embeddings/weight"][tokens] + p["decoder/position_encodings/encodings"][:length]
    causal = jnp.tril(jnp.ones((length, length), bool))[None, None]
    for i in range(layers):
        n = f"decoder/layer_{i}"
        h = _norm(x, p, n + "/self_attention/layer_norm")
        q, k, v = jnp.split(_linear(h, p, n + "/self_attention/linear_0"), 3, -1)
        x = x + _linear(_attend(q, k, v, n_heads, causal), p, n + "/self_attention/linear_1")
        h = _norm(x, p, n + "/attention/layer_norm")
        q = _linear(h, p, n + "/attention/linear_0")
        k, v = jnp.split(_linear(encoded, p, n + "/attention/linear_1"), 2, -1)
        x = x + _linear(_attend(q, k, v, n_heads), p, n + "/attention/linear_2")
        h = _norm(x, p, n + "/ffn/layer_norm")
        x = x + _linear(_gelu(_linear(h, p, n + "/ffn/linear_0")), p, n + "/ffn/linear_1")
    x = _norm(x[:, from_position:], p, "decoder/layer_norm")
    return x @ p["decoder/embeddings/weight"].T
