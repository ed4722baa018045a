"""Confidence intervals and the adaptation report's numbers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from rl_alphamaml.evaluation import AdaptationResult, format_table
from rl_alphamaml.stats import format_ci, json_safe, mean_ci95, t_quantile_975


def test_ci_matches_hand_computation() -> None:
    mean, half = mean_ci95([1.0, 2.0, 3.0, 4.0, 5.0])
    # sd = sqrt(2.5), se = sd / sqrt(5), t(0.975, df=4) = 2.776
    assert mean == 3.0
    assert half == pytest.approx(2.776 * math.sqrt(2.5) / math.sqrt(5), rel=1e-9)
    mean, half = mean_ci95([7.0])  # one value: no interval, shown as n/a, written as null
    assert mean == 7.0 and math.isnan(half)
    assert format_ci(half) == "n/a" and format_ci(1.234, 2) == "1.23"
    assert json_safe({"ci95": half, "rows": [1.0, float("inf")]}) == {"ci95": None, "rows": [1.0, None]}
    with pytest.raises(ValueError):
        mean_ci95([])


def test_t_quantiles_are_continuous_and_tend_to_the_normal() -> None:
    assert t_quantile_975(30) == pytest.approx(2.042, abs=1e-3)
    assert t_quantile_975(31) == pytest.approx(2.040, abs=1e-3)  # series takes over from the table
    assert t_quantile_975(60) == pytest.approx(2.000, abs=1e-3)
    assert t_quantile_975(120) == pytest.approx(1.980, abs=1e-3)
    assert t_quantile_975(10**6) == pytest.approx(1.960, abs=1e-3)


def test_report_rows_and_paired_change() -> None:
    values = [[1.0, 2.0, 3.0], [2.0, 4.0, 3.5]]
    result = AdaptationResult("return", values, [{}, {}, {}], "ckpt", 3, 0, higher_is_better=True)
    rows = result.summary()
    assert rows[1]["mean"] == pytest.approx(9.5 / 3)
    change, half = mean_ci95([1.0, 2.0, 0.5])
    assert rows[1]["change"] == pytest.approx(change) and rows[1]["change_ci95"] == pytest.approx(half)
    table = format_table(result)
    assert f"{rows[1]['mean']:.4f}" in table and f"{rows[1]['ci95']:.4f}" in table
    assert result.to_json()["adaptation"] == rows


def test_the_plot_has_one_panel_per_metric(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The success rate beside the return (Meta-World) gets a panel of its own, with every labelled result in it."""
    from rl_alphamaml import evaluation

    figures: list[Any] = []
    monkeypatch.setattr(evaluation, "write_figure_atomic", lambda fig, path: figures.append(fig))

    def result(shift: float) -> AdaptationResult:
        return AdaptationResult("return", [[1.0 + shift, 2.0], [3.0 + shift, 5.0]], [{}, {}], "c.pt", 1, 0, True,
                                other_metrics={"success_rate": [[0.0, 0.5], [0.5, 1.0]]})

    evaluation.plot_adaptation([("ours", result(0.0)), ("other", result(1.0))], tmp_path / "a.png", "title")
    (fig,) = figures
    assert [ax.get_ylabel() for ax in fig.axes] == ["return", "success_rate"]
    assert all(len(ax.containers) == 2 for ax in fig.axes)  # one errorbar per labelled result in each panel
    one = AdaptationResult("return", [[1.0, 2.0], [3.0, 5.0]], [{}, {}], "c.pt", 1, 0, True)
    evaluation.plot_adaptation([("ours", one)], tmp_path / "b.png", "title")
    assert [ax.get_ylabel() for ax in figures[1].axes] == ["return"]
