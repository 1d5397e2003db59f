"""One exception root, three kinds, and exit codes chosen by class.

Every exception class auth/, stages/ and pipelines/ define derives from ``ForcebeamError`` and
says whether it is the user's input (exit 2), a final answer, or something that may pass;
the walk below imports every module, so a new class outside the root fails here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from forcebeam.auth.errors import (
    ApiQuotaExceeded,
    AuthError,
    ConfigError,
    ErrorKind,
    ForcebeamError,
    OrgUnreachableError,
    SalesforceApiError,
    TransientAuthError,
)
from forcebeam.auth.exit_codes import EXIT_FAILED, EXIT_INVALID, exit_code_for

PACKAGES = ("forcebeam.auth", "forcebeam.stages", "forcebeam.pipelines")
#: Not failures: a signal turned into an exception so cleanup runs (``pipelines.signals``).
NOT_ERRORS = {"forcebeam.pipelines.signals.Terminated"}


def _modules() -> list[str]:
    names = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        names.append(package_name)
        names.extend(info.name for info in pkgutil.walk_packages(package.__path__,
                                                                  package_name + "."))
    return names


def _exception_classes() -> dict[str, type[BaseException]]:
    found = {}
    for name in _modules():
        module = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == name:
                found[f"{name}.{value.__qualname__}"] = value
    return found


def test_every_exception_class_of_ours_derives_from_the_root_and_has_a_kind():
    classes = _exception_classes()
    assert len(classes) >= 20, sorted(classes)   # the walk really saw the three folders
    outside = sorted(name for name, cls in classes.items()
                     if name not in NOT_ERRORS and not issubclass(cls, ForcebeamError))
    assert outside == []
    for name, cls in classes.items():
        if name not in NOT_ERRORS:
            assert isinstance(cls.kind, ErrorKind), name


@pytest.mark.parametrize(("name", "kind"), [
    ("forcebeam.pipelines.problems.PipelineFileError", ErrorKind.INPUT),
    ("forcebeam.stages.salesforce.config.StageInputError", ErrorKind.INPUT),
    ("forcebeam.stages.registry.StageConfigError", ErrorKind.INPUT),
    ("forcebeam.stages.registry.UnknownStageError", ErrorKind.INPUT),
    ("forcebeam.stages.salesforce.incremental.StateFileError", ErrorKind.INPUT),
    ("forcebeam.stages.salesforce.bulk_query.BulkQueryRefusedError", ErrorKind.FATAL),
    ("forcebeam.stages.salesforce.bulk_query.BulkJobFailedError", ErrorKind.FATAL),
    ("forcebeam.stages.salesforce.columnar.PageParseError", ErrorKind.TRANSIENT),
    ("forcebeam.pipelines.build.PipelineBuildError", ErrorKind.FATAL),
    ("forcebeam.pipelines.yaml_api.RejectedRecordError", ErrorKind.FATAL),
    ("forcebeam.pipelines.demo.EmulatorStartError", ErrorKind.FATAL),
])
def test_former_outsiders_say_their_kind(name, kind):
    assert _exception_classes()[name].kind is kind


def test_callers_catching_the_old_built_in_bases_still_catch():
    from forcebeam.stages.registry import StageConfigError, UnknownStageError
    from forcebeam.stages.salesforce.incremental import StateFileError

    assert issubclass(ConfigError, ValueError) and issubclass(StageConfigError, ValueError)
    assert issubclass(StateFileError, ValueError) and issubclass(UnknownStageError, LookupError)


def test_the_exit_code_follows_the_class_not_a_built_in_base():
    from forcebeam.pipelines.problems import PipelineFileError
    from forcebeam.stages.registry import UnknownStageError

    assert exit_code_for(PipelineFileError([])) == EXIT_INVALID
    assert exit_code_for(ConfigError("bad", path="auth.type")) == EXIT_INVALID
    assert exit_code_for(UnknownStageError("unknown stage 'ReadFromSalesfroce'")) == EXIT_INVALID
    for failure in (AuthError("refused", code="invalid_grant"), TransientAuthError("503"),
                    OrgUnreachableError("h:1", "connection refused", 6),
                    SalesforceApiError(400, "INVALID_FIELD", "no such column"),
                    ApiQuotaExceeded(403, "REQUEST_LIMIT_EXCEEDED", "limit")):
        assert exit_code_for(failure) == EXIT_FAILED, failure
    # A built-in error is never taken for the user's input, whatever its type.
    for foreign in (ValueError("x"), KeyError("x"), TypeError("x"), RuntimeError("x")):
        assert exit_code_for(foreign) == EXIT_FAILED
