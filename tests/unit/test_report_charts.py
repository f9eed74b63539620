"""matplotlib is the optional ``charts`` extra: without it, ``ivr report --out`` says which
extra to install, in one line, before reading anything."""

from __future__ import annotations

import sys

import pytest

from hotline.cli import build_parser
from hotline.report import ChartsUnavailable, compute_report, render_png
from ivr.config import DEFAULT_CONFIG_DIR

EXTRA = "pip install 'hotline[charts]'"


@pytest.fixture
def no_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """matplotlib as if not installed: importing it raises ImportError."""
    for name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)


@pytest.mark.parametrize("out", ["report.png", "report.html"])
def test_report_out_without_matplotlib_names_the_extra(
    no_matplotlib: None, tmp_path, capsys: pytest.CaptureFixture[str], out: str
) -> None:
    """``ivr report --out report.png`` (or ``.html``, which embeds the chart) without
    matplotlib exits 2 with one line on stderr naming the option and the extra to install;
    it stops before Redis (the URL given would fail with exit 3) and writes nothing."""
    args = build_parser().parse_args([
        "--config", str(DEFAULT_CONFIG_DIR), "report", "--out", str(tmp_path / out),
        "--redis", "redis://127.0.0.1:1/0",
    ])
    assert args.func(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"ivr report: --out {tmp_path / out}: charts need matplotlib, which is not installed: "
        f"{EXTRA}\n"
    )
    assert not (tmp_path / out).exists()


def test_render_png_without_matplotlib_raises_charts_unavailable(no_matplotlib: None) -> None:
    """The library call fails the same way: ChartsUnavailable naming the extra (an
    ImportError deep inside matplotlib would not say what to install)."""
    report = compute_report([], {}, start=0.0, end=900.0)
    with pytest.raises(ChartsUnavailable, match=r"pip install 'hotline\[charts\]'"):
        render_png(report)
