"""Config loading: types, ranges, unknown keys and overrides fail with one message naming key and file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rl_alphamaml.cli import KIND_MODULES, config_markdown, experiment_kind, load_experiment_config, main
from rl_alphamaml.config import FieldInfo, describe, save_config
from rl_alphamaml.errors import ConfigError, UserError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_every_shipped_config_loads() -> None:
    paths = sorted(CONFIGS.glob("*.yaml"))
    assert paths
    for path in paths:
        try:
            config, _ = load_experiment_config(path)
        except UserError as err:  # a Meta-World config where metaworld is missing: what to install, nothing else
            assert path.name.startswith("metaworld_") and 'pip install -e ".[metaworld]"' in str(err), (path, err)
            continue
        assert config.train.iterations >= 1 and config.train.checkpoint_every >= 1


def test_overrides_are_typed_and_validated() -> None:
    config, _ = load_experiment_config(CONFIGS / "sinusoid.yaml", ["inner.lr=0.1", "train.iterations=7",
                                                                   "inner.lr_mode=hd", "outer.lr=1e-4"])
    assert config.inner.lr == 0.1 and config.train.iterations == 7 and config.inner.lr_mode == "hd"
    assert config.outer.lr == 1e-4  # a YAML 1.1 string like 1e-4 is accepted as a number


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["inner.lrr=0.1"], r"inner\.lrr: unknown key"),
        (["inner.lr=fast"], r"inner\.lr: must be a number"),
        (["inner.lr=-1"], r"inner\.lr: must be > 0"),
        (["inner.steps=1.5"], r"inner\.steps: must be an integer"),
        (["inner.lr_mode=magic"], r"inner\.lr_mode: must be one of"),
        (["inner.lr=20"], r"inner\.lr: initial alpha 20.0 is outside"),
        (["train.iterations=0"], r"train\.iterations: must be >= 1"),
        (["inner.first_order=maybe"], r"inner\.first_order: must be true or false"),
        (["hidden=[40, 0]"], r"hidden: must be >= 1"),
        (["inner=3"], r"inner: must be a mapping"),
        (["noequals"], r"expected KEY=VALUE"),
    ],
)
def test_bad_values_name_the_key_and_the_file(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_experiment_config(CONFIGS / "sinusoid.yaml", overrides)
    if overrides != ["noequals"]:
        assert "sinusoid.yaml" in str(info.value)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_experiment_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_experiment_config(write(tmp_path, "kind: [sinusoid"))
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        load_experiment_config(write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(ConfigError, match=r"exp\.yaml: kind: must be one of"):
        load_experiment_config(write(tmp_path, "kind: chess\n"))
    with pytest.raises(ConfigError, match=r"exp\.yaml: train\.itertions: unknown key"):
        load_experiment_config(write(tmp_path, "kind: sinusoid\ntrain: {itertions: 5}\n"))


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    config, _ = load_experiment_config(CONFIGS / "sinusoid_alpha.yaml", ["inner.steps=3"])
    save_config(config, tmp_path / "config.yaml")
    again, _ = load_experiment_config(tmp_path / "config.yaml")
    assert again == config


def described(kind: str) -> dict[str, FieldInfo]:
    return {r.key: r for r in describe(experiment_kind(kind, "test").config)}


def test_config_command_shows_every_key_with_its_meaning(capsys: pytest.CaptureFixture[str]) -> None:
    for kind in KIND_MODULES:
        rows = described(kind)
        assert all(r.doc for r in rows.values()), [k for k, r in rows.items() if not r.doc]  # every key explained
        assert main(["config", kind]) == 0
        out = capsys.readouterr().out
        assert all(key in out for key in rows)
    promp = described("rl")["promp.clip_eps"]
    assert (promp.type, promp.default, promp.range) == ("float", 0.3, "(0, 1]")
    assert main(["config", "rl", "--markdown"]) == 0
    assert "| `promp.clip_eps` | float | 0.3 | (0, 1] | clip range of the likelihood ratio |" in capsys.readouterr().out


def test_the_configuration_overview_matches_the_configs() -> None:
    """The grouped overview on the site's configuration page (it was the README's) names no key that does not
    exist and leaves out no RL key or key every kind shares; the full tables under it are generated."""
    page = (CONFIGS.parent / "docs" / "configuration.md").read_text(encoding="utf-8")
    section = page.split("\n## Every key\n", 1)[0]
    kinds = {kind: set(described(kind)) for kind in KIND_MODULES}
    shared = set.intersection(*kinds.values())
    listed: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith("| key") or line.startswith("| ---"):
            continue
        cell = line.split("|")[1].strip()
        for key in re.findall(r"`([a-z_.]+)`", cell):
            assert key in (kinds["rl"] if cell.startswith("RL:") else shared), f"the overview names unknown key {key}"
            listed.add(key)
    unlisted = sorted(k for k in kinds["rl"] | shared if k not in listed and k not in ("kind", "experiment", "seed"))
    assert not unlisted, f"keys missing from the configuration overview: {unlisted}"
    assert page.count("<!-- config-reference: ") == len(KIND_MODULES)  # docs/hooks.py fills in every kind's table


def test_config_markdown_keeps_five_columns_when_a_type_has_a_bar() -> None:
    for kind in KIND_MODULES:
        for line in config_markdown(kind).splitlines():
            assert len(re.split(r"(?<!\\)\|", line)) == 7, line  # | five cells |
    assert "| `env.model` | 'v5' \\| 'maml2017' \\| null | None |" in config_markdown("rl")
