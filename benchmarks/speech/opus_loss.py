"""Opus with packet loss: libopus through ctypes, each 20 ms packet kept or lost.

A caller's Opus over the internet loses packets; the receiving decoder conceals each gap
(libopus's packet loss concealment: a decode with no data). ffmpeg cannot drop packets
between its encoder and decoder, so this talks to Debian's ``libopus0`` directly (installed
with ``ffmpeg``, ``scripts/setup-debian.sh``; no Python package). Narrowband, VoIP mode,
20 ms frames at 8 kHz, as ``channel.opus_codec``; the encoder's lookahead is taken off so the
output lines up with the input sample for sample.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

import numpy as np

RATE = 8000
FRAME = RATE // 50  # 20 ms
MAX_PACKET = 1500
# opus_defines.h
APPLICATION_VOIP = 2048
SET_BITRATE = 4002
SET_BANDWIDTH = 4008
BANDWIDTH_NARROWBAND = 1101
GET_LOOKAHEAD = 4027


@cache
def libopus() -> ctypes.CDLL:
    path = ctypes.util.find_library("opus") or "libopus.so.0"
    try:
        lib = ctypes.CDLL(path)
    except OSError as exc:
        raise RuntimeError("libopus is not installed (apt-get install libopus0)") from exc
    lib.opus_encoder_create.restype = ctypes.c_void_p
    lib.opus_encoder_create.argtypes = [ctypes.c_int32, ctypes.c_int,
                                        ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.opus_decoder_create.restype = ctypes.c_void_p
    lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int,
                                        ctypes.POINTER(ctypes.c_int)]
    lib.opus_encode.restype = ctypes.c_int32
    lib.opus_encode.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int16), ctypes.c_int,
                                ctypes.c_char_p, ctypes.c_int32]
    lib.opus_decode.restype = ctypes.c_int
    lib.opus_decode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32,
                                ctypes.POINTER(ctypes.c_int16), ctypes.c_int, ctypes.c_int]
    lib.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
    lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
    return lib


def lost_packets(packets: int, loss_percent: float, rng: np.random.Generator) -> np.ndarray:
    """Which packets are lost: each one independently with probability ``loss_percent``."""
    return rng.random(packets) < loss_percent / 100


def through_lossy_opus(
    x: np.ndarray, kbits: float, loss_percent: float, rng: np.random.Generator
) -> np.ndarray:
    """``x`` (8 kHz) encoded at ``kbits`` kbit/s, ``loss_percent`` of its packets lost and
    concealed by the decoder, decoded: same length as the input."""
    lib = libopus()
    error = ctypes.c_int(0)
    encoder = lib.opus_encoder_create(RATE, 1, APPLICATION_VOIP, ctypes.byref(error))
    if error.value != 0 or not encoder:
        raise RuntimeError(f"opus_encoder_create failed ({error.value})")
    decoder = lib.opus_decoder_create(RATE, 1, ctypes.byref(error))
    if error.value != 0 or not decoder:
        lib.opus_encoder_destroy(encoder)
        raise RuntimeError(f"opus_decoder_create failed ({error.value})")
    try:
        # A variadic function: every argument typed here (an untyped pointer would be cut
        # to a C int).
        handle = ctypes.c_void_p(encoder)
        lib.opus_encoder_ctl(handle, SET_BITRATE, ctypes.c_int32(round(kbits * 1000)))
        lib.opus_encoder_ctl(handle, SET_BANDWIDTH, ctypes.c_int32(BANDWIDTH_NARROWBAND))
        lookahead = ctypes.c_int32(0)
        lib.opus_encoder_ctl(handle, GET_LOOKAHEAD, ctypes.byref(lookahead))
        delay = lookahead.value
        pcm = np.clip(np.round(x), -32768, 32767).astype(np.int16)
        # Lookahead's worth more, so the last input samples come out too.
        padded = np.concatenate([pcm, np.zeros(delay + (-(len(pcm) + delay)) % FRAME, np.int16)])
        frames = len(padded) // FRAME
        lost = lost_packets(frames, loss_percent, rng)
        out = np.zeros(frames * FRAME, np.int16)
        packet = ctypes.create_string_buffer(MAX_PACKET)
        decoded = np.zeros(FRAME, np.int16)
        decoded_p = decoded.ctypes.data_as(ctypes.POINTER(ctypes.c_int16))
        for i in range(frames):
            frame = np.ascontiguousarray(padded[i * FRAME : (i + 1) * FRAME])
            size = lib.opus_encode(encoder, frame.ctypes.data_as(ctypes.POINTER(ctypes.c_int16)),
                                   FRAME, packet, MAX_PACKET)
            if size < 0:
                raise RuntimeError(f"opus_encode failed ({size})")
            # A lost packet: the decoder is given nothing and conceals the gap.
            data, length = (None, 0) if lost[i] else (packet.raw[:size], size)
            got = lib.opus_decode(decoder, data, length, decoded_p, FRAME, 0)
            if got != FRAME:
                raise RuntimeError(f"opus_decode gave {got} samples")
            out[i * FRAME : (i + 1) * FRAME] = decoded
    finally:
        lib.opus_encoder_destroy(encoder)
        lib.opus_decoder_destroy(decoder)
    return out[delay : delay + len(x)].astype(np.float64)
