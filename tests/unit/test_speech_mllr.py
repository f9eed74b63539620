"""pocketsphinx's telephone transform (``speech.pocketsphinx_mllr``): the shipped file is
one for the wheel's model, a relative path is the intents file's, and a broken or missing
file is refused at config load with the file, the key and the line."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ivr.config import DEFAULT_CONFIG_DIR, ConfigError, load_config
from ivr.speech.mllr import WHEEL_STREAMS, read_mllr
from ivr.speech.schema import DEFAULT_MLLR, load_intents


def write_intents(config_dir: Path, speech_lines: str) -> Path:
    """The shipped intents file with ``speech_lines`` at the top of its speech section."""
    path = config_dir / "intents.yaml"
    shipped = (DEFAULT_CONFIG_DIR / "intents.yaml").read_text()
    text = shipped.replace("speech:\n", f"speech:\n{speech_lines}", 1)
    path.write_text(text)
    return path


def test_the_shipped_transform_is_one_affine_map_per_stream_of_the_wheels_model() -> None:
    transform = read_mllr(DEFAULT_MLLR)
    assert transform.streams == WHEEL_STREAMS
    assert len(transform.matrices) == 1  # one regression class
    for matrix in transform.matrices[0]:
        # estimated, not an identity: a telephone line moves every cepstral coefficient...
        assert not np.allclose(matrix, np.eye(len(matrix)), atol=0.02)
        # ...but not out of recognition: a moved model, not another one
        assert np.all(np.abs(np.diag(matrix) - 1.0) < 0.5)


def test_the_shipped_intents_and_a_config_without_the_key_use_the_shipped_transform() -> None:
    assert load_intents().speech.pocketsphinx_mllr == DEFAULT_MLLR
    cfg = load_config(DEFAULT_CONFIG_DIR, environ={})
    assert cfg.intents.speech.pocketsphinx_mllr == DEFAULT_MLLR


def test_a_relative_path_is_the_intents_files_and_null_is_the_model_as_trained(
    config_dir: Path,
) -> None:
    shutil.copy(DEFAULT_MLLR, config_dir / "mine.mllr")
    path = write_intents(config_dir, "  pocketsphinx_mllr: mine.mllr\n")
    assert load_intents(path).speech.pocketsphinx_mllr == config_dir / "mine.mllr"
    cfg = load_config(config_dir, environ={})
    assert cfg.intents.speech.pocketsphinx_mllr == config_dir / "mine.mllr"

    path = write_intents(config_dir, "  pocketsphinx_mllr: null\n")
    assert load_intents(path).speech.pocketsphinx_mllr is None


def test_a_missing_transform_names_the_file_and_the_key(config_dir: Path) -> None:
    write_intents(config_dir, "  pocketsphinx_mllr: gone.mllr\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir, environ={})
    (problem,) = caught.value.problems
    assert problem.startswith(f"{config_dir / 'intents.yaml'}: speech.pocketsphinx_mllr: ")
    assert "gone.mllr" in problem


@pytest.mark.parametrize(
    ("mend", "said"),
    [
        # a copy cut short in the last stream's variance scales
        (lambda lines: lines[:-1], r"line \d+: class 0 stream 2: variance scales: expected 13"),
        # a transform for a model of two streams
        (lambda lines: [lines[0], "2", *lines[2:]], "the model has 3 streams"),
        # a number that is not one
        (lambda lines: [*lines[:5], lines[5].replace("0", "x", 1), *lines[6:]],
         r"line 6: class 0 stream 0: matrix: not numbers"),
        # a stream of 12 dimensions
        (lambda lines: [*lines[:2], "12", *lines[3:]], "stream has 13 dimensions"),
        # a bias that overflowed when it was estimated
        (lambda lines: [*lines[:16], "nan " + lines[16].split(" ", 1)[1], *lines[17:]],
         r"line 17: class 0 stream 0: bias: not finite"),
        # two transforms one after the other
        (lambda lines: [*lines, *lines[2:]], r"line 51: past the end of 1 class\(es\)"),
    ],
)
def test_a_broken_transform_is_refused_with_its_line(
    config_dir: Path, mend: Callable[[list[str]], list[str]], said: str
) -> None:
    lines = DEFAULT_MLLR.read_text().splitlines()
    (config_dir / "broken.mllr").write_text("\n".join(mend(lines)) + "\n")
    write_intents(config_dir, "  pocketsphinx_mllr: broken.mllr\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir, environ={})
    (problem,) = caught.value.problems
    assert "speech.pocketsphinx_mllr" in problem
    assert "broken.mllr" in problem
    assert re.search(said, problem), problem
