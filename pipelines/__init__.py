"""forcebeam pipelines: pipeline files, their validation, building and running; the CLI.

A pipeline file is Beam YAML plus `connections:`. The pieces, in the order a run uses them:
`loader` (YAML with line numbers, `${VAR}`) -> `spec` (PipelineSpec) -> `validation` (+
`connections`, `stage_configs`, `online_checks`; problems in `problems`) -> `beam_yaml`
(connections inlined, our provider listing included) -> `build` (options, Beam YAML's
constructor, graph passes; never runs) -> `run` (runner choice, `progress`, `summary`, exit,
incremental commit). `spec` also holds the file format's constants. `yaml_api` (the stages'
YAML faces) + `providers.yaml` expose the stages to Beam YAML; `cli` is the `forcebeam`
command; `demo` runs the example against the emulator.

Public API: `pipelines.run.run_file(file, beam_args=(), progress_seconds=3.0, stream=None)`,
`pipelines.validation.validate(spec, online=False)`, `pipelines.spec.PipelineSpec.load(path)`,
`pipelines.cli.main(argv=None)`, `pipelines.demo.run_demo(out_dir="out", records=2000)`.
"""
