"""The stage plugin registry: named PTransform factories found through entry points.

A stage is any callable returning a ``beam.PTransform`` (usually the PTransform class),
registered under the entry-point group ``forcebeam.stages``::

    [forcebeam.stages]
    ReadFromSalesforce = forcebeam.stages.salesforce.read:ReadFromSalesforce

Its config schema is the pydantic model the factory names in ``config_model`` (our stages
use ``stages.salesforce.config``); for factories without one, a model is derived from the
signature, so third-party plugins need nothing forcebeam-specific. A stage may also register
that model under the same name in the group ``forcebeam.stage_configs``: validating a file
then does not import the stage's module (ours import Beam, ~1.4 s, which `forcebeam run`
spends only once a valid file's reads have started their jobs). Discovery re-reads the
entry points on each call: a plugin installed (or put on ``sys.path``) is usable at once.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from forcebeam.auth.config_problems import closest
from forcebeam.auth.errors import InputError
from forcebeam.auth.plugins import PluginRegistry

__all__ = ["ENTRY_POINT_GROUP", "StageInfo", "StageConfigError", "UnknownStageError",
           "available_stages", "get_stage"]

ENTRY_POINT_GROUP = "forcebeam.stages"
CONFIG_ENTRY_POINT_GROUP = "forcebeam.stage_configs"
STAGES = PluginRegistry(ENTRY_POINT_GROUP)
STAGE_CONFIGS = PluginRegistry(CONFIG_ENTRY_POINT_GROUP)


class UnknownStageError(InputError, LookupError):
    """No stage has this name; the message lists the closest names."""


class StageConfigError(InputError, ValueError):
    """A stage config is invalid; the message names each field and suggests a fix."""


@dataclass(frozen=True)
class StageInfo:
    """A registered stage: its name, where it comes from, its factory and config schema."""

    name: str
    target: str                       # "module:attr" from the entry point
    distribution: str | None
    _entry_point: Any

    def load(self) -> Callable[..., Any]:
        """The factory (imports the plugin module on first use)."""
        return self._entry_point.load()

    @property
    def config_model(self) -> type[BaseModel]:
        if self.name in STAGE_CONFIGS:
            model = STAGE_CONFIGS.load(self.name)
            if isinstance(model, type) and issubclass(model, BaseModel):
                return model
        return config_model_of(self.load())

    @property
    def description(self) -> str:
        doc = inspect.getdoc(self.load()) or ""
        return doc.split("\n\n", 1)[0]


def available_stages() -> dict[str, StageInfo]:
    """Every registered stage by name (first registration wins on duplicates)."""
    return {name: StageInfo(name=name, target=point.value,
                            distribution=getattr(getattr(point, "dist", None), "name", None),
                            _entry_point=point)
            for name, point in STAGES.entry_points().items()}


def get_stage(name: str) -> StageInfo:
    stages = available_stages()
    if name in stages:
        return stages[name]
    close = closest(name, stages)
    hint = f" Did you mean {close}?" if close else ""
    raise UnknownStageError(f"unknown stage {name!r}.{hint} Registered stages: "
                            f"{', '.join(sorted(stages)) or 'none'} (entry-point group "
                            f"{ENTRY_POINT_GROUP!r})")


def config_model_of(factory: Callable[..., Any]) -> type[BaseModel]:
    """The factory's ``config_model`` or a strict model derived from its signature."""
    model = getattr(factory, "config_model", None)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # noqa: BLE001 - unresolvable annotations: fall back to Any
        hints = {}
    fields: dict[str, Any] = {}
    for name, param in inspect.signature(target).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = hints.get(name, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[name] = (annotation, default)
    return create_model(f"{getattr(factory, '__name__', 'Stage')}Config",
                        __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True),
                        **fields)
