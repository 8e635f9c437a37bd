"""Each service as its composition root builds it, with its settings read from the environment
(tests set CARECOORD_* the way a deployment does): the one way tests reach a ServiceDefinition."""

from __future__ import annotations

import importlib

from carecoord_shared.config import ServiceSettings
from carecoord_shared.service import ServiceDefinition


def settings_for(service: str) -> ServiceSettings:
    module = importlib.import_module(f"carecoord_{service}.settings")
    settings: ServiceSettings = getattr(module, f"{service.capitalize()}Settings")()
    return settings


def built(service: str) -> ServiceDefinition:
    definition: ServiceDefinition = importlib.import_module(f"carecoord_{service}.app").build(settings_for(service))
    return definition
