"""Business-hours calendars: 24x7, weekdays in an IANA zone, DST, holidays, and their config."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from ivr.config import ConfigError, load_config
from workorders.calendar import ALWAYS_OPEN, AlwaysOpen, BusinessHours, ClosedDates
from workorders.clocks import ClockKind
from workorders.schema import WorkOrdersConfig

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
H = timedelta(hours=1)
CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"

#: Monday to Friday, 08:00-17:00.
OFFICE = {day: ((8 * 60, 17 * 60),) for day in range(5)}


def berlin(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=BERLIN)


def test_always_open_counts_every_second():
    """24x7: adding is plain addition and the time between is plain subtraction."""
    start = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert ALWAYS_OPEN.add_business_time(start, 5 * H) == start + 5 * H
    assert ALWAYS_OPEN.business_time_between(start, start + 30 * H) == 30 * H
    assert not ALWAYS_OPEN.business_hours_only
    assert AlwaysOpen() == ALWAYS_OPEN


def test_office_hours_skip_the_night_and_the_weekend():
    """Friday 15:00 plus 4 business hours is Monday 10:00; the time between them is 4 h."""
    office = BusinessHours(BERLIN, OFFICE)
    friday = berlin(2026, 6, 5, 15, 0)
    monday = office.add_business_time(friday, 4 * H)
    assert monday == berlin(2026, 6, 8, 10, 0)
    assert office.business_time_between(friday, monday) == 4 * H
    assert office.business_time_between(monday, friday) == -4 * H
    assert office.business_hours_only


def test_start_outside_hours_counts_from_the_next_opening():
    """An order raised on Saturday night starts counting on Monday at 08:00."""
    office = BusinessHours(BERLIN, OFFICE)
    assert office.add_business_time(berlin(2026, 6, 6, 22, 0), 2 * H) == berlin(2026, 6, 8, 10, 0)
    assert office.add_business_time(berlin(2026, 6, 6, 22, 0), timedelta(0)) == berlin(
        2026, 6, 6, 22, 0)


def test_target_ending_at_closing_time_is_that_closing_time():
    """Exactly the rest of the day lands on 17:00 that day, not 08:00 the next."""
    office = BusinessHours(BERLIN, OFFICE)
    assert office.add_business_time(berlin(2026, 6, 8, 15, 0), 2 * H) == berlin(2026, 6, 8, 17, 0)


@pytest.mark.parametrize(
    ("zone", "spring", "autumn"),
    [(BERLIN, date(2026, 3, 29), date(2026, 10, 25)),
     (NEW_YORK, date(2026, 3, 8), date(2026, 11, 1))],
)
def test_a_whole_day_open_lasts_23_or_25_hours_when_the_clocks_change(zone, spring, autumn):
    """Open 00:00-24:00 on the day of the change: 23 real hours in spring, 25 in autumn."""
    every_day = BusinessHours(zone, {day: ((0, 1440),) for day in range(7)})

    def day_long(day: date) -> timedelta:
        start = datetime.combine(day, datetime.min.time(), tzinfo=zone)
        return every_day.business_time_between(start, start + timedelta(days=2)) - (
            every_day.business_time_between(start + timedelta(days=1), start + timedelta(days=2))
        )

    assert day_long(spring) == 23 * H
    assert day_long(autumn) == 25 * H


def test_office_hours_across_spring_forward_keep_local_opening_times():
    """Friday 16:00 CET plus 3 business hours is Monday 10:00 CEST: the hours are wall-clock
    hours, and the night hour that the spring change skips changes nothing."""
    office = BusinessHours(BERLIN, OFFICE)
    due = office.add_business_time(berlin(2026, 3, 27, 16, 0), 3 * H)
    assert due == berlin(2026, 3, 30, 10, 0)
    assert due.astimezone(BERLIN).utcoffset() == 2 * H  # summer time on Monday
    assert due.astimezone(UTC) == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)


def test_office_hours_across_fall_back():
    """New York: Friday 16:00 EDT plus 2 business hours is Monday 09:00 EST (UTC-5)."""
    office = BusinessHours(NEW_YORK, OFFICE)
    friday = datetime(2026, 10, 30, 16, 0, tzinfo=NEW_YORK)
    due = office.add_business_time(friday, 2 * H)
    assert due.astimezone(UTC) == datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
    assert office.business_time_between(friday, due) == 2 * H


def test_night_shift_across_the_change_counts_real_time():
    """A Sunday open 01:00-04:00 in Berlin lasts 2 real hours in spring (02:00 is skipped)
    and 4 in autumn (02:00-03:00 happens twice)."""
    sundays = BusinessHours(BERLIN, {6: ((60, 240),)})
    assert sundays.business_time_between(berlin(2026, 3, 29), berlin(2026, 3, 30)) == 2 * H
    assert sundays.business_time_between(berlin(2026, 10, 25), berlin(2026, 10, 26)) == 4 * H


def test_public_holiday_and_listed_date_are_closed():
    """German Unity Day (3 October 2025, a Friday) and a listed 24 December are closed;
    Christmas in Bavaria too: work continues on the next open day."""
    office = BusinessHours(BERLIN, OFFICE, ClosedDates("DE", "BY", [date(2026, 12, 24)]))
    assert office.add_business_time(berlin(2025, 10, 2, 16, 0), 2 * H) == berlin(
        2025, 10, 6, 9, 0)
    assert office.add_business_time(berlin(2026, 12, 23, 16, 0), 2 * H) == berlin(
        2026, 12, 28, 9, 0)
    assert office.business_time_between(berlin(2026, 12, 23), berlin(2026, 12, 29)) == 18 * H


def test_subdivision_holiday_only_where_it_is_kept():
    """Epiphany (6 January) is a holiday in Bavaria but not in Berlin (the Land)."""
    assert date(2026, 1, 6) in ClosedDates("DE", "BY")
    assert date(2026, 1, 6) not in ClosedDates("DE", "BE")
    assert date(2026, 1, 6) not in ClosedDates()


def test_a_calendar_that_never_opens_is_refused():
    """No weekday with hours is refused at construction, not as an endless search later."""
    with pytest.raises(ValueError, match="no weekday"):
        BusinessHours(BERLIN, {})


@given(
    start=st.datetimes(datetime(2025, 1, 1), datetime(2027, 12, 31), timezones=st.just(UTC)),
    minutes=st.integers(0, 60 * 24 * 20),
)
def test_adding_then_measuring_gives_the_duration_back(start, minutes):
    """For any start and duration, the business time between a start and start + duration
    is that duration (the two functions are inverse), also across DST and holidays."""
    office = BusinessHours(BERLIN, OFFICE, ClosedDates("DE", "BY"))
    duration = timedelta(minutes=minutes)
    due = office.add_business_time(start, duration)
    assert due >= start
    assert office.business_time_between(start, due) == duration


def test_shipped_config_is_24x7_and_every_clock_may_count_business_hours():
    """The shipped file: no hours (24x7), resolution 8/72/120 h, feedback 24 h."""
    config = WorkOrdersConfig.model_validate(yaml.safe_load(
        (CONFIG_DIR / "workorders.yaml").read_text()))
    policy = config.clock_policy()
    assert policy.calendar == ALWAYS_OPEN
    assert policy.feedback_within == 24 * 3600
    assert policy.business_clocks == frozenset(ClockKind)
    assert config.resolution_hours.model_dump() == {"urgent": 8, "important": 72, "normal": 120}


def test_business_hours_config_builds_the_calendar():
    """The commented example of the shipped file, uncommented, builds a Berlin office
    calendar with Bavarian holidays and listed dates, counted for the chosen clocks."""
    config = WorkOrdersConfig.model_validate({"calendar": {
        "hours": {"mon": ["08:00-12:00", "13:00-17:00"], "fri": ["08:00-16:00"]},
        "zone": "Europe/Berlin", "holidays_country": "DE", "holidays_subdivision": "BY",
        "closed_dates": ["2026-12-24"], "clocks": ["response", "resolution"]}})
    policy = config.clock_policy()
    calendar = policy.calendar
    assert calendar.business_hours_only
    assert calendar.add_business_time(berlin(2026, 6, 8, 11, 0), 2 * H) == berlin(
        2026, 6, 8, 14, 0)
    assert date(2026, 12, 24) in calendar.closed_dates  # type: ignore[attr-defined]
    assert policy.business_clocks == {ClockKind.RESPONSE, ClockKind.RESOLUTION}


@pytest.mark.parametrize(
    ("calendar", "key", "reason"),
    [
        ({"hours": {"monday": ["08:00-17:00"]}}, "hours", "not a weekday"),
        ({"hours": {"mon": ["8-17"]}}, "hours", "not a period"),
        ({"hours": {"mon": ["17:00-08:00"]}}, "hours", "end after it starts"),
        ({"hours": {"mon": ["08:00-12:00", "11:00-13:00"]}}, "hours", "overlap"),
        ({"hours": {"mon": ["08:00-17:00"]}, "zone": "Europe/Bonn"}, "zone", "IANA"),
        ({"hours": {"mon": []}}, "", "no weekday has open hours"),
        ({"holidays_country": "DE"}, "", "need business hours"),
        ({"hours": {"mon": ["08:00-17:00"]}, "holidays_country": "XX"}, "", "XX"),
        ({"hours": {"mon": ["08:00-17:00"]}, "holidays_country": "DE",
          "holidays_subdivision": "ZZ"}, "", "ZZ"),
        ({"clocks": ["reply"]}, "clocks", "response"),
        ({"weekdays": {}}, "weekdays", "Extra inputs"),
    ],
)
def test_bad_calendar_names_key_and_reason(calendar, key, reason):
    """Each mistake in ``calendar:`` is refused with the key and a reason that says why."""
    with pytest.raises(ValidationError) as error:
        WorkOrdersConfig.model_validate({"calendar": calendar})
    (problem,) = error.value.errors()
    assert problem["loc"][:2] == ("calendar", key) if key else problem["loc"] == ("calendar",)
    assert reason in problem["msg"]


def test_resolution_shorter_than_response_is_refused():
    """A resolution target before the response target cannot be met sensibly: refused."""
    with pytest.raises(ValidationError, match=r"resolution_hours\.urgent=0\.5 is shorter"):
        WorkOrdersConfig.model_validate({"resolution_hours": {"urgent": 0.5}})


def test_config_loader_names_file_key_and_reason(tmp_path):
    """Through ``ivr check-config``'s loader, a bad zone names workorders.yaml, the key and
    the reason."""
    for path in CONFIG_DIR.iterdir():
        if path.is_file():
            (tmp_path / path.name).write_bytes(path.read_bytes())
    data = yaml.safe_load((tmp_path / "workorders.yaml").read_text())
    data["calendar"] = {"hours": {"mon": ["08:00-17:00"]}, "zone": "Mars/Olympus"}
    (tmp_path / "workorders.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    message = str(caught.value)
    assert "workorders.yaml" in message and "calendar.zone" in message
    assert "IANA" in message
