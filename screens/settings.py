"""The screens' settings (``config/screens.yaml``, optional): the UI language and the
thresholds that colour the wallboard's numbers. Validated once when the screens are built; a
missing file means the defaults, a wrong one stops the start with file, key and reason."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = ["Level", "ScreensSettings", "SettingsError", "Threshold", "load_settings"]

FILE_NAME = "screens.yaml"


class SettingsError(ValueError):
    """The settings file does not validate; the message names the file and the keys."""


class Level:
    OK = "ok"
    WARN = "warn"
    ALARM = "alarm"


class Threshold(BaseModel):
    """A number is ``warn`` from ``warn`` on and ``alarm`` from ``alarm`` on (higher is
    worse); for a service level the margin below the target, in percentage points."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warn: float = Field(ge=0)
    alarm: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Threshold:
        if self.alarm < self.warn:
            raise ValueError(f"alarm ({self.alarm}) must not be below warn ({self.warn})")
        return self

    def level(self, value: float | None) -> str:
        if value is None:
            return Level.OK
        if value >= self.alarm:
            return Level.ALARM
        return Level.WARN if value >= self.warn else Level.OK


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    waiting: Threshold = Threshold(warn=3, alarm=6)
    longest_wait_s: Threshold = Threshold(warn=30, alarm=60)
    asa_s: Threshold = Threshold(warn=20, alarm=40)
    # percentage points below the queue's service-level target
    service_level_below_target: Threshold = Threshold(warn=0.1, alarm=10)
    # seconds an agent has been paused
    paused_s: Threshold = Threshold(warn=600, alarm=1800)


class ScreensSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    language: str = Field(default="en", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
    thresholds: Thresholds = Thresholds()
    # the wallboard's chart: calls offered and service level per interval, today
    chart_interval_s: int = Field(default=1800, ge=300, le=3600)
    # an order clock is "at risk" within this long of its due time
    clock_warning_s: int = Field(default=3600, ge=60)
    # the dispositions an agent picks from when resolving an order (its ``outcome``)
    dispositions: tuple[str, ...] = Field(
        default=("answered", "fixed", "workaround", "escalated", "no-fault-found"), min_length=1)


def load_settings(config_dir: Path | str | None) -> ScreensSettings:
    if config_dir is None:
        return ScreensSettings()
    path = Path(config_dir) / FILE_NAME
    if not path.exists():
        return ScreensSettings()
    try:
        data = yaml.safe_load(path.read_text()) or {}
        return ScreensSettings.model_validate(data)
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: not YAML: {exc}") from None
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        raise SettingsError(f"{path}: {reasons}") from None
