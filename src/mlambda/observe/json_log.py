"""The platform's own log (serve's terminal) as JSON lines, for shipping (``--log-format
json``): one object a record, with its time (UTC), level, logger and message."""

from __future__ import annotations

import logging
import time

import msgspec


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        whole = int(record.created)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        line = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return msgspec.json.encode(line).decode()


def ship_as_json(*names: str) -> None:
    """Every handler of these loggers writes JSON lines from now on."""
    formatter = JsonFormatter()
    for name in names:
        for handler in logging.getLogger(name).handlers:
            handler.setFormatter(formatter)
