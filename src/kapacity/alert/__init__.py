"""Alert levels, events and their Kapacitor-compatible encodings."""

from kapacity.alert.event import AlertData, Result, Series, encode_alert_json
from kapacity.gotypes import Duration, Level, Time

__all__ = ["AlertData", "Duration", "Level", "Result", "Series", "Time", "encode_alert_json"]
