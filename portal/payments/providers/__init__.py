"""Payment providers: one interface, an adapter module per provider, and the registry.

Every module of this package other than ``base`` defines one :class:`Provider` subclass;
the registry finds them, so adding a provider is adding its module and its settings.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from pathlib import Path

from flask import current_app

from portal.payments.providers.base import (
    ConfirmsInBrowser,
    Provider,
    ProviderError,
    SetupResult,
    UnknownProvider,
    UnsupportedMethodType,
    WebhookEvent,
)

__all__ = [
    "ConfirmsInBrowser",
    "Provider",
    "ProviderError",
    "SetupResult",
    "UnknownProvider",
    "UnsupportedMethodType",
    "WebhookEvent",
    "configured_providers",
    "get_provider",
    "provider_classes",
]


@cache
def provider_classes() -> dict[str, type[Provider]]:
    """Every adapter in this package by slug, in display order."""
    found: list[type[Provider]] = []
    for info in pkgutil.iter_modules([str(Path(__file__).resolve().parent)]):
        if info.name in {"base"}:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Provider)
                and value is not Provider
                and value.__module__ == module.__name__
            ):
                found.append(value)
    found.sort(key=lambda cls: (getattr(cls, "order", 100), cls.slug))
    return {cls.slug: cls for cls in found}


def configured_providers() -> list[Provider]:
    """The providers whose keys are set in the current app's configuration."""
    config = current_app.config
    return [cls(config) for cls in provider_classes().values() if cls.is_configured(config)]


def get_provider(slug: str) -> Provider:
    """The configured provider ``slug``.

    :raise UnknownProvider: for an unknown slug or a provider whose keys are not set.
    """
    cls = provider_classes().get(str(slug))
    if cls is None or not cls.is_configured(current_app.config):
        raise UnknownProvider(f"no payment provider {slug!r} is configured")
    return cls(current_app.config)
