"""Structured JSON logging with a correlation id that follows a violation across services.

Each nameko worker gets its own bound logger from the ``Log`` dependency, so nothing is shared
between eventlet greenthreads. The correlation id travels in nameko's context data (AMQP headers
``nameko.correlation_id``), set by our entrypoints (see ``shared.entrypoints``).
"""
from __future__ import annotations

import logging
import os
import re
import sys

import structlog
from nameko.extensions import DependencyProvider

from shared import identity

_configured = False
# 18-character identity numbers (居民身份证, residence permits, 2023 permanent resident cards)
# and 2017 permanent resident cards never reach a log line in full; no other number should
# be logged at all (intake turns documents into person ids before anything is logged).
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(?:\d{17}[\dXx]|[A-Z]{3}\d{12})(?![0-9A-Za-z])")
_SECRET_KEYS = {"password", "secret", "token", "api_key", "authorization", "credential"}


def mask_id_numbers(text: str) -> str:
    """``110101199001011234`` -> ``1****************4`` (``shared.identity.mask``) wherever it
    appears in ``text``."""
    return _ID_NUMBER.sub(lambda m: identity.mask(m.group(0)), text)


def _scrub(_logger, _name, event_dict):
    for key in list(event_dict):
        if key.lower() in _SECRET_KEYS:
            event_dict[key] = "***"
        elif isinstance(event_dict[key], str):
            event_dict[key] = mask_id_numbers(event_dict[key])
    return event_dict


def configure(level: str | None = None) -> None:
    global _configured
    if _configured:
        return
    level_name = (level or os.environ.get("LOG_LEVEL", "INFO")).upper()
    logging.basicConfig(stream=sys.stdout, format="%(message)s", level=level_name)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _scrub,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level_name)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=True,
    )
    _configured = True


def get_logger(**bound):
    configure()
    return structlog.get_logger().bind(**bound)


class Log(DependencyProvider):
    """Per-worker logger bound to service, entrypoint and correlation id."""

    def setup(self):
        configure(self.container.config.get("LOG_LEVEL"))

    def get_dependency(self, worker_ctx):
        return get_logger(
            service=self.container.service_name,
            entrypoint=worker_ctx.entrypoint.method_name,
            correlation_id=worker_ctx.context_data.get("correlation_id"),
        )


class CorrelationId(DependencyProvider):
    """The worker's correlation id (set by ``shared.entrypoints``), as a plain string."""

    def get_dependency(self, worker_ctx):
        return worker_ctx.context_data.get("correlation_id") or "none"
