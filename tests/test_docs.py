"""The documentation site builds with ``mkdocs build --strict`` (no broken link or anchor, no missing reference,
no missing included file), offline, with its generated parts in it: the configuration reference from
``rl-alphamaml config``, the API reference from the docstrings and the examples in the guide."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from rl_alphamaml.cli import KIND_MODULES, experiment_kind
from rl_alphamaml.config import describe

ROOT = Path(__file__).resolve().parents[1]


def load_hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(out)], cwd=out, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def text(path: Path) -> str:
    """A page's text without its markup."""
    return re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8"))


def test_the_site_builds_strict_with_every_page(site: Path) -> None:
    for page in ("getting-started", "concepts", "guide/custom-task-family", "task-families", "envs", "cli",
                 "configuration", "tensorboard", "zoo", "benchmarks", "architecture", "changelog",
                 "reference/meta", "reference/envs", "reference/agents"):
        assert (site / page / "index.html").is_file(), page
    assert (site / "assets" / "results" / "locomotion_paper.png").is_file()
    assert (site / "assets" / "zoo" / "ant_dir" / "eval" / "videos" / "task0_before_after.gif").is_file()


def test_the_site_loads_nothing_from_the_internet(site: Path) -> None:
    for page in site.rglob("*.html"):
        external = re.findall(r'<(?:script|link|img)[^>]*(?:src|href)="(https?://[^"]+)"', page.read_text())
        assert not external, (page, external)


def test_the_configuration_page_lists_every_key_of_every_kind(site: Path) -> None:
    page = text(site / "configuration" / "index.html")
    for kind in KIND_MODULES:
        for row in describe(experiment_kind(kind, "test").config):
            assert row.key in page and row.doc in page, (kind, row.key)
    assert "'v5' | 'maml2017' | null" in page  # an escaped | stays inside its cell


def test_the_api_reference_and_the_guide_are_generated(site: Path) -> None:
    meta = (site / "reference" / "meta" / "index.html").read_text()
    assert 'id="rl_alphamaml.meta.optimizer.MetaOptimizer"' in meta and ":class:" not in meta
    assert "Behl, Baydin &amp; Torr" in meta  # the docstrings' references
    agents = (site / "reference" / "agents" / "index.html").read_text()
    assert 'id="agents.outer_steps.TRPOStep.step"' in agents
    guide = text(site / "guide" / "custom-task-family" / "index.html")
    assert 'ENV_ID = envs.register_family("RingNavigation-v0"' in guide.replace("&quot;", '"')


def test_config_reference_hook() -> None:
    hooks = load_hooks()
    page = hooks.config_reference("before\n<!-- config-reference: sinusoid -->\nafter")
    assert page.startswith("before\n| key | type | default | range | meaning |") and page.endswith("\nafter")
    assert "| `task.amplitude` | list of float | (0.1, 5.0) |" in page
    with pytest.raises(ValueError, match="unknown kind 'chess'"):
        hooks.config_reference("<!-- config-reference: chess -->")


def test_the_readme_points_at_pages_and_files_that_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert len(local) > 20
    assert not [t for t in local if not (ROOT / t).exists()]
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert not [t for t in local if t.startswith("docs/") and t.endswith(".md") and t[5:] not in nav]


def load_outer_loops() -> ModuleType:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import outer_loops

    return outer_loops


def test_the_readme_outer_loop_table_is_the_benchmarks_results() -> None:
    """The README's "Which outer loop" table is what ``outer_loops.py`` builds from its results file, not a copy."""
    outer_loops = load_outer_loops()
    results = json.loads((ROOT / "benchmarks" / "results" / "outer_loops.json").read_text(encoding="utf-8"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert outer_loops.readme_block(results["results"]) in readme


def test_update_readme_rewrites_only_its_block(tmp_path: Path) -> None:
    outer_loops = load_outer_loops()
    results = json.loads((ROOT / "benchmarks" / "results" / "outer_loops.json").read_text(encoding="utf-8"))["results"]
    readme = tmp_path / "README.md"
    readme.write_text(f"# head\n\n{outer_loops.README_BEGIN}\nstale table\n{outer_loops.README_END}\n\ntail\n",
                      encoding="utf-8")
    outer_loops.update_readme(results, readme)
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# head\n\n") and text.endswith("\n\ntail\n") and "stale" not in text
    assert text.count(outer_loops.README_BEGIN) == 1
    assert "| MAML-TRPO (`configs/<family>.yaml`) | 1.00× / 1.00× /" in text
    outer_loops.update_readme(results, readme)
    assert readme.read_text(encoding="utf-8") == text


def test_the_choice_table_says_how_many_seeds_reached_the_level() -> None:
    """A cell is the mean multiple when every seed got to MAML-TRPO's level, ``—`` with the count when some did."""
    outer_loops = load_outer_loops()

    def run(method: str, seed: int, steps: float | None) -> dict[str, object]:
        seconds = None if steps is None else 10 * steps
        return {"method": method, "seed": seed, "steps_to_target": steps, "seconds_to_target": seconds,
                "held_out": {"mean": -10.0 - seed}}

    runs = [run("maml", 0, 1.0), run("maml", 1, 2.0), run("alpha", 0, 0.5), run("alpha", 1, 1.0),
            run("alpha_log_adam", 0, 0.5), run("alpha_log_adam", 1, None),
            run("alpha_beta0.01", 0, None), run("alpha_beta0.01", 1, None)]
    table = outer_loops.choice_table([{"family": "navigation2d", "seeds": [0, 1], "runs": runs}])
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1].removesuffix(" |") for line in table[2:]}
    assert rows[outer_loops.LABELS["alpha"]] == "0.50× / 0.50× / −10.5"
    assert rows[outer_loops.LABELS["alpha_log_adam"]] == "— (1 of 2 seeds) / — (1 of 2 seeds) / −10.5"
    assert rows[outer_loops.LABELS["alpha_beta0.01"]] == "— / — / −10.5"


def test_outer_loops_keeps_recorded_runs_whose_folders_are_gone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """On a fresh clone (no run folders) a new variant trains alone: MAML-TRPO's recorded run is kept as recorded
    rather than trained again, a run whose folder is here is measured again, and variants not asked for stay."""
    outer_loops = load_outer_loops()
    monkeypatch.setattr(outer_loops, "ROOT", tmp_path)
    (tmp_path / "here").mkdir()

    def record(method: str, seed: int, run_dir: str, level: float) -> dict[str, object]:
        return {"method": method, "seed": seed, "run_dir": run_dir,
                "command": outer_loops.train_command(*outer_loops.run_spec("navigation2d", method, seed)),
                "curve": {"env_steps": [1.0, 2.0, 3.0], "seconds": [10.0, 20.0, 30.0],
                          "smoothed": [0.0, level / 2, level]}, "held_out": {"mean": level}}

    stale = {**record("alpha_beta0.01", 0, "gone/stale", 10.0), "command": "rl-alphamaml train with other settings"}
    recorded = [record("maml", 0, "gone/maml", 10.0), record("alpha", 0, "gone/alpha", 10.0),
                record("trpo_subsample", 0, "here", 4.0), stale]
    trained: list[tuple[str, int]] = []

    def run(family: str, method: str, seed: int) -> dict[str, object]:
        trained.append((method, seed))
        return record(method, seed, f"new/{method}", 20.0 if method == "trpo_radius_hd" else 5.0)

    monkeypatch.setattr(outer_loops, "run", run)
    result = outer_loops.family_result("navigation2d", [0], ["trpo_subsample", "trpo_radius_hd", "alpha_beta0.01"],
                                       recorded)
    # a record made with another command is trained again, with a warning
    assert trained == [("trpo_subsample", 0), ("trpo_radius_hd", 0), ("alpha_beta0.01", 0)]
    out, err = capsys.readouterr()
    assert "navigation2d, maml, seed 0: kept as recorded (gone/maml is not on this machine)" in out
    assert "alpha_beta0.01, seed 0: the recorded run was trained with another command" in err
    runs = {r["method"]: r for r in result["runs"]}
    assert list(runs) == ["maml", "trpo_subsample", "alpha", "alpha_beta0.01", "trpo_radius_hd"]  # VARIANTS' order
    assert runs["maml"]["run_dir"] == "gone/maml" and runs["alpha"]["run_dir"] == "gone/alpha"
    # measured against the recorded MAML-TRPO: 90 % of its gain (9.0) first reached at the second point, or never
    assert runs["trpo_radius_hd"]["steps_to_target"] == 2.0 and runs["trpo_subsample"]["steps_to_target"] is None
    assert result["seeds"] == [0]
    # the new runs' seconds are against a MAML-TRPO run timed elsewhere, and the tables say so
    assert runs["trpo_radius_hd"]["reference_timed_elsewhere"] and "reference_timed_elsewhere" not in runs["alpha"]
    assert outer_loops.ELSEWHERE_NOTE in outer_loops.readme_block([result])
    with pytest.raises(SystemExit, match="seed 1 has no MAML-TRPO run"):
        outer_loops.family_result("navigation2d", [], [], [record("alpha", 1, "gone/alpha", 10.0)])


def test_update_readme_without_its_block_is_one_error_line(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    outer_loops = load_outer_loops()
    readme = tmp_path / "README.md"
    readme.write_text("# no block here\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        outer_loops.update_readme([], readme)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("outer_loops.py: error: ")
    assert f"has no {outer_loops.README_BEGIN} … {outer_loops.README_END} block" in err
    assert readme.read_text(encoding="utf-8") == "# no block here\n"


def test_the_radius_line_counts_iterations_at_the_runs_own_bound() -> None:
    """outer_loops.md's radius figures: the bound is the run's ``trpo.max_kl_max`` when its command sets one, else the
    config's default; a run without an adapted radius has no line."""
    outer_loops = load_outer_loops()
    curve = {"max_kl": [0.02, 0.05, 0.1, 0.1, 1.0, 0.4], "backtracks": [0, 1, 1, 0, 2, 2]}
    default = {"seed": 3, "command": "rl-alphamaml train configs/x.yaml --set trpo.max_kl_mode=hd", "curve": curve}
    assert outer_loops.radius_line(default) == ("seed 3: δ 0.02 → 0.4, ≥ 0.1 from iteration 3, at its bound 1 for 1 "
                                                "of 6 iterations; 1.00 line-search backtracks per iteration")
    bounded = {**default, "command": default["command"] + " --set trpo.max_kl_max=0.1"}
    assert "at its bound 0.1 for 4 of 6 iterations" in outer_loops.radius_line(bounded)
    assert outer_loops.radius_line({**default, "curve": {"backtracks": [0]}}) is None
