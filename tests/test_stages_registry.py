"""The stage registry: plugins found through entry points, configs validated with suggestions.

Configs are checked the way ``forcebeam validate``/``run`` check them: against the stage's
config model (its own, or one derived from its signature) by ``pipelines.stage_configs``.
"""

from __future__ import annotations

import textwrap

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from forcebeam.pipelines.stage_configs import problems
from forcebeam.stages import UnknownStageError, available_stages, get_stage

PLUGIN = textwrap.dedent('''
    """A third-party stage: multiplies numbers (no forcebeam imports needed)."""
    import apache_beam as beam


    class Multiply(beam.PTransform):
        """Multiply every element by a factor."""

        def __init__(self, factor: int, label_suffix: str = "") -> None:
            super().__init__()
            self.factor = factor

        def expand(self, pcoll):
            factor = self.factor
            return pcoll | beam.Map(lambda x: x * factor)
''')


@pytest.fixture
def plugin_on_path(tmp_path, monkeypatch):
    """A plugin "installed" as a module plus a *.dist-info with entry_points.txt on sys.path."""
    (tmp_path / "acme_multiply.py").write_text(PLUGIN)
    dist = tmp_path / "acme_multiply-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-multiply\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[forcebeam.stages]\nMultiply = acme_multiply:Multiply\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_plugin_registered_through_entry_points_is_usable_by_name(plugin_on_path):
    info = get_stage("Multiply")
    assert info.distribution == "acme-multiply"
    assert "Multiply every element" in info.description
    transform = info.load()(factor=3)
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as pipeline:
        out = pipeline | beam.Create([1, 2, 5]) | transform
        assert_that(out, equal_to([3, 6, 15]))


def test_plugin_config_schema_is_derived_from_its_signature(plugin_on_path):
    model = get_stage("Multiply").config_model
    assert set(model.model_fields) == {"factor", "label_suffix"}
    found = problems("Multiply", {"facter": 2})
    assert (("facter",), "unknown field 'facter'", "did you mean 'factor'?") in found
    assert (("factor",), "missing required field 'factor'", "") in found


def test_our_stages_are_registered_with_their_config_models():
    stages = available_stages()
    assert {"ReadFromSalesforce", "WriteToSalesforce"} <= set(stages)
    read_fields = set(stages["ReadFromSalesforce"].config_model.model_fields)
    assert {"connection", "sobject", "soql", "fields", "mode", "incremental", "split",
            "types"} <= read_fields
    # The model validation reads without importing the stage is the stage's own.
    for name in ("ReadFromSalesforce", "WriteToSalesforce", "ReplicateSalesforce"):
        assert stages[name].config_model is stages[name].load().config_model


def test_misspelt_read_config_names_the_field_and_the_fix():
    found = problems("ReadFromSalesforce",
                     {"connection": {}, "sobjcet": "Account", "mode": "fast"})
    assert (("sobjcet",), "unknown field 'sobjcet'", "did you mean 'sobject'?") in found
    assert any(path == ("mode",) and "'auto'" in message for path, message, _ in found)


def test_write_upsert_without_external_id_is_refused_with_the_fix():
    found = problems("WriteToSalesforce",
                     {"connection": {}, "sobject": "Account", "operation": "upsert"})
    assert any("external_id_field: required for operation upsert" in message
               for _, message, _ in found)


def test_unknown_stage_suggests_the_closest_name():
    with pytest.raises(UnknownStageError) as caught:
        get_stage("ReadFromSalesforse")
    assert "Did you mean ReadFromSalesforce?" in str(caught.value)
