"""Presets in a searchspace YAML: parsed and checked against the path's params, enqueued before the
sampler where their device and batch fit."""

from __future__ import annotations

from pathlib import Path

import pytest

from navigator import paths
from navigator.errors import InputError
from navigator.search import space as space_mod
from navigator.search.storage import StudyStorage
from navigator.search.study import Search
from navigator.settings import StudySettings

SPACE = """
path: ort_cpu
params:
  level:   {stage: runtime, choices: [all, basic]}
  threads: {stage: runtime, int: [1, 4]}
  inter:   {stage: runtime, int: [1, 4], when: {level: basic}}
presets:
  - {level: basic, inter: 2}
  - {threads: 1, when: {batch: small}}
  - {threads: 3, when: {device: cuda}}
"""


def test_presets_are_parsed_with_their_conditions() -> None:
    space = space_mod.parse(SPACE, "ort_cpu.yaml")
    assert [p.params for p in space.presets] == [{"level": "basic", "inter": 2}, {"threads": 1}, {"threads": 3}]
    assert space.presets[1].applies("cpu", 8) and not space.presets[1].applies("cpu", 64)
    assert not space.presets[2].applies("cpu", 1) and space.presets[2].applies("cuda", 1)
    assert space_mod.preset_params(space, space.presets[0], ("onnx", "file")) == \
        {"ort_cpu.level": "basic", "ort_cpu.threads": 4, "ort_cpu.inter": 2}


@pytest.mark.parametrize("preset, message", [
    ("{nope: 1}", "preset 1 names 'nope', not a parameter of this path"),
    ("{level: fast}", "preset 1: level='fast' is not one of ['all', 'basic']"),
    ("{threads: 9}", "preset 1: threads=9 is outside [1, 4]"),
    ("{threads: 1, when: {batch: huge}}", "preset 1: when takes device: cpu|cuda and batch: small|large"),
    ("just text", "preset 1 must be a non-empty mapping of params"),
])
def test_a_bad_preset_is_an_input_error_naming_the_file(preset: str, message: str) -> None:
    text = SPACE.split("presets:")[0] + f"presets:\n  - {preset}\n"
    with pytest.raises(InputError, match="^bad.yaml: ") as err:
        space_mod.parse(text, "bad.yaml")
    assert message in str(err.value)


def test_presets_run_after_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "space", lambda name, framework=None, narrowing=None: space_mod.parse(SPACE, "t.yaml"))
    settings = StudySettings(batch_sizes=(4,))
    search = Search(StudyStorage(f"sqlite:///{tmp_path / 'study.db'}"), settings, ("onnx", "file"), ["ort_cpu"], "fp")
    queued = [(t.user_attrs["role"], t.system_attrs["fixed_params"]) for t in search.study.get_trials(deepcopy=False)]
    assert queued == [("baseline", {"path": "ort_cpu", "ort_cpu.level": "all", "ort_cpu.threads": 4}),
                      ("ort_cpu preset 1", {"path": "ort_cpu", "ort_cpu.level": "basic", "ort_cpu.threads": 4,
                                            "ort_cpu.inter": 2}),
                      ("ort_cpu preset 2", {"path": "ort_cpu", "ort_cpu.level": "all", "ort_cpu.threads": 1})]


def test_the_shipped_presets_parse() -> None:
    for name in paths.NAMES:
        for preset in paths.space(name).presets:
            assert preset.params
