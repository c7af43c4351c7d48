"""Five-field cron expressions (minute hour day-of-month month day-of-week), as Vertex reads
them for schedules, with an optional CRON_TZ=/TZ= prefix."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
NAMES = [{}, {}, {},
         {m: i + 1 for i, m in enumerate(
             "jan feb mar apr may jun jul aug sep oct nov dec".split())},
         {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}]


class CronError(ValueError):
    pass


class Cron:
    def __init__(self, text: str):
        self.text = text
        parts = text.split()
        self.zone = ZoneInfo("UTC")
        if parts and parts[0].split("=")[0] in ("CRON_TZ", "TZ"):
            try:
                self.zone = ZoneInfo(parts.pop(0).split("=", 1)[1])
            except Exception as exc:
                raise CronError(f"Unknown time zone in cron {text!r}.") from exc
        if len(parts) != 5:
            raise CronError(f"Cron {text!r} must have five fields: minute hour day-of-month "
                            f"month day-of-week.")
        self.fields = [self._field(p, i) for i, p in enumerate(parts)]
        self.fields[4] = {d % 7 for d in self.fields[4]}
        self.dom_any, self.dow_any = parts[2] == "*", parts[4] == "*"

    def _field(self, text: str, index: int) -> set[int]:
        low, high = RANGES[index]
        values: set[int] = set()
        for item in text.lower().split(","):
            body, _, step = item.partition("/")
            if body == "*":
                start, end = low, high
            elif "-" in body:
                a, b = body.split("-", 1)
                start, end = self._number(a, index), self._number(b, index)
            else:
                start = end = self._number(body, index)
                if step:
                    end = high
            try:
                stride = int(step) if step else 1
            except ValueError as exc:
                raise CronError(f"Bad step {step!r} in cron {self.text!r}.") from exc
            if not (low <= start <= end <= high) or stride < 1:
                raise CronError(f"Field {item!r} of cron {self.text!r} is out of range "
                                f"{low}-{high}.")
            values.update(range(start, end + 1, stride))
        return values

    def _number(self, text: str, index: int) -> int:
        if text in NAMES[index]:
            return NAMES[index][text]
        try:
            return int(text)
        except ValueError as exc:
            raise CronError(f"Bad value {text!r} in cron {self.text!r}.") from exc

    def matches(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone)
        minute, hour, dom, month, dow = self.fields
        day_ok_dom = local.day in dom
        day_ok_dow = (local.isoweekday() % 7) in dow
        if self.dom_any or self.dow_any:
            day_ok = day_ok_dom and day_ok_dow
        else:
            day_ok = day_ok_dom or day_ok_dow  # cron ORs two restricted day fields
        return local.minute in minute and local.hour in hour and local.month in month and day_ok

    def next_after(self, moment: datetime) -> datetime:
        """The first whole minute strictly after `moment` that matches."""
        candidate = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        for _ in range(366 * 24 * 60):
            if self.matches(candidate):
                return candidate
            candidate += timedelta(minutes=1)
        raise CronError(f"Cron {self.text!r} never fires.")
