"""The seven Azure days of the 2024 week-long traces and their train/validation/test split.

The 2024 traces cover seven days per service, but not the same seven: the code series starts on
Friday 2024-05-10 and the conversation series on Sunday 2024-05-12 (minute 0 is 00:00 UTC of each
service's first day). An *Azure day* pairs the code and conversation series of the same weekday, since
weekday is what shapes the load (weekend troughs, weekday peaks):

===================  ==========  ==========  =====
day                  code date   conv date   split
===================  ==========  ==========  =====
``2024-05-12-sun``   2024-05-12  2024-05-12  train
``2024-05-13-mon``   2024-05-13  2024-05-13  train
``2024-05-14-tue``   2024-05-14  2024-05-14  train
``2024-05-15-wed``   2024-05-15  2024-05-15  train (validation)
``2024-05-16-thu``   2024-05-16  2024-05-16  test
``2024-05-17-fri``   2024-05-10  2024-05-17  train
``2024-05-18-sat``   2024-05-11  2024-05-18  test
===================  ==========  ==========  =====

Days are named by the conversation date (the five dates both services share, plus the conversation
dates of the two days where code comes from the week before) and the weekday. The test days are one
weekday (Thursday) and one weekend day (Saturday), so learned agents are scored on both load regimes
on days they never trained on; the validation day (Wednesday) is a train day set aside for model
selection.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import numpy as np

MINUTES_PER_DAY = 1440
"""Minutes in one day."""

CODE_FIRST_DATE = datetime.date(2024, 5, 10)
"""UTC date of minute 0 of the code series (a Friday)."""

CONV_FIRST_DATE = datetime.date(2024, 5, 12)
"""UTC date of minute 0 of the conversation series (a Sunday)."""

TRACE_DAYS = 7
"""Days covered by each service's series."""


@dataclass(frozen=True)
class AzureDay:
    """One Azure day: the code and conversation series of the same weekday.

    Attributes:
        name: Day key, ``<conversation date>-<weekday>``, e.g. ``"2024-05-13-mon"``.
        weekday: Three-letter lower-case weekday, e.g. ``"mon"``.
        code_date: UTC date of the code series' day.
        conv_date: UTC date of the conversation series' day.
    """

    name: str
    weekday: str
    code_date: datetime.date
    conv_date: datetime.date

    @property
    def code_first_minute(self) -> int:
        """Row (minute) of the per-minute file where this day's code series starts."""
        return (self.code_date - CODE_FIRST_DATE).days * MINUTES_PER_DAY

    @property
    def conv_first_minute(self) -> int:
        """Row (minute) of the per-minute file where this day's conversation series starts."""
        return (self.conv_date - CONV_FIRST_DATE).days * MINUTES_PER_DAY


def _pair_days() -> tuple[AzureDay, ...]:
    """Pair each conversation day with the code day of the same weekday, in conversation-date order."""
    code_by_weekday = {
        date.weekday(): date for date in (CODE_FIRST_DATE + datetime.timedelta(days=k) for k in range(TRACE_DAYS))
    }
    days = []
    for k in range(TRACE_DAYS):
        conv_date = CONV_FIRST_DATE + datetime.timedelta(days=k)
        weekday = conv_date.strftime("%a").lower()
        days.append(
            AzureDay(
                name=f"{conv_date.isoformat()}-{weekday}",
                weekday=weekday,
                code_date=code_by_weekday[conv_date.weekday()],
                conv_date=conv_date,
            )
        )
    return tuple(days)


_DAYS: tuple[AzureDay, ...] = _pair_days()

AZURE_DAYS: tuple[str, ...] = tuple(day.name for day in _DAYS)
"""All seven day names, Sunday 2024-05-12 to Saturday 2024-05-18; a day's index is its position here."""

TEST_DAYS: tuple[str, ...] = ("2024-05-16-thu", "2024-05-18-sat")
"""Held-out days: one weekday, one weekend day. Never train or tune on these."""

TRAIN_DAYS: tuple[str, ...] = tuple(name for name in AZURE_DAYS if name not in TEST_DAYS)
"""The five days to train on (includes :data:`VALIDATION_DAY`)."""

VALIDATION_DAY = "2024-05-15-wed"
"""A train day set aside for model selection and early stopping."""


def azure_day(day: int | np.integer | str) -> AzureDay:
    """Look up an Azure day by index (0–6, see :data:`AZURE_DAYS`) or by name.

    Raises:
        ValueError: ``day`` is neither a valid index nor a day name; the message lists the valid days.
    """
    if isinstance(day, str) and day in AZURE_DAYS:
        return _DAYS[AZURE_DAYS.index(day)]
    if isinstance(day, (int, np.integer)) and not isinstance(day, bool) and 0 <= day < len(_DAYS):
        return _DAYS[int(day)]
    valid = ", ".join(f"{index}={name}" for index, name in enumerate(AZURE_DAYS))
    raise ValueError(f"unknown Azure day {day!r}; valid days (index or name): {valid}")
