"""SOQL relative date literals (TODAY, LAST_N_DAYS:n, THIS_QUARTER, …) as [start, end) days.

Ranges start at 00:00 in the user's time zone; the emulated user lives in UTC. Weeks start
on Sunday (en_US locale), quarters are calendar quarters.
"""

from __future__ import annotations

from datetime import date, timedelta


def _month_start(day: date, months_delta: int = 0) -> date:
    index = day.year * 12 + (day.month - 1) + months_delta
    return date(index // 12, index % 12 + 1, 1)


def _quarter_start(day: date, quarters_delta: int = 0) -> date:
    first = date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    return _month_start(first, quarters_delta * 3)


def _week_start(day: date, weeks_delta: int = 0) -> date:
    sunday = day - timedelta(days=(day.weekday() + 1) % 7)
    return sunday + timedelta(weeks=weeks_delta)


def _year_start(day: date, years_delta: int = 0) -> date:
    return date(day.year + years_delta, 1, 1)


def relative_range(name: str, n: int | None, today: date) -> tuple[date, date]:
    """The half-open day range [start, end) that the literal `name[:n]` denotes."""
    one = timedelta(days=1)
    fixed = {
        "TODAY": (today, today + one),
        "YESTERDAY": (today - one, today),
        "TOMORROW": (today + one, today + 2 * one),
        "THIS_WEEK": (_week_start(today), _week_start(today, 1)),
        "LAST_WEEK": (_week_start(today, -1), _week_start(today)),
        "NEXT_WEEK": (_week_start(today, 1), _week_start(today, 2)),
        "THIS_MONTH": (_month_start(today), _month_start(today, 1)),
        "LAST_MONTH": (_month_start(today, -1), _month_start(today)),
        "NEXT_MONTH": (_month_start(today, 1), _month_start(today, 2)),
        "LAST_90_DAYS": (today - 90 * one, today + one),
        "NEXT_90_DAYS": (today + one, today + 91 * one),
        "THIS_QUARTER": (_quarter_start(today), _quarter_start(today, 1)),
        "LAST_QUARTER": (_quarter_start(today, -1), _quarter_start(today)),
        "NEXT_QUARTER": (_quarter_start(today, 1), _quarter_start(today, 2)),
        "THIS_YEAR": (_year_start(today), _year_start(today, 1)),
        "LAST_YEAR": (_year_start(today, -1), _year_start(today)),
        "NEXT_YEAR": (_year_start(today, 1), _year_start(today, 2)),
    }
    if name in fixed:
        return fixed[name]
    count = n or 0
    parametric = {
        "LAST_N_DAYS": (today - count * one, today + one),
        "NEXT_N_DAYS": (today + one, today + (count + 1) * one),
        "N_DAYS_AGO": (today - count * one, today - (count - 1) * one),
        "LAST_N_WEEKS": (_week_start(today, -count), _week_start(today)),
        "NEXT_N_WEEKS": (_week_start(today, 1), _week_start(today, 1 + count)),
        "N_WEEKS_AGO": (_week_start(today, -count), _week_start(today, 1 - count)),
        "LAST_N_MONTHS": (_month_start(today, -count), _month_start(today)),
        "NEXT_N_MONTHS": (_month_start(today, 1), _month_start(today, 1 + count)),
        "N_MONTHS_AGO": (_month_start(today, -count), _month_start(today, 1 - count)),
        "LAST_N_QUARTERS": (_quarter_start(today, -count), _quarter_start(today)),
        "NEXT_N_QUARTERS": (_quarter_start(today, 1), _quarter_start(today, 1 + count)),
        "N_QUARTERS_AGO": (_quarter_start(today, -count), _quarter_start(today, 1 - count)),
        "LAST_N_YEARS": (_year_start(today, -count), _year_start(today)),
        "NEXT_N_YEARS": (_year_start(today, 1), _year_start(today, 1 + count)),
        "N_YEARS_AGO": (_year_start(today, -count), _year_start(today, 1 - count)),
    }
    return parametric[name]
