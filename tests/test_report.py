"""The report from generated Parquet fixtures: sections, numbers against direct pandas/scipy, refusals."""

import base64
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from results_fixture import write_fixture
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import ttost_paired

from reports import MixedResultsError, build_report, drawing
from reports.cli import main

SECTIONS = ["# lrsweep report", "## Results per workload", "paired comparisons with the best",
            "## Across workloads", "### Normalised IQM and performance profiles", "## Generations",
            "## Convergence", "## Tuning budget", "## Tuning curves", "## Files"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One full report and its raw Parquet: 4 workloads x 4 strategies x 5 seeds, one diverged run,
    and trec6 run with a single seed."""
    sweep = str(tmp_path_factory.mktemp("sweep"))
    write_fixture(sweep, workloads=("synthetic", "cifar10", "rte", "trec6"), seeds_by_workload={"trec6": [0]})
    paths = build_report([sweep], os.path.join(sweep, "out"), thresholds=[0.6, 0.8], svg=True)
    trials = pd.read_parquet(os.path.join(sweep, "trials.parquet"))
    epochs = pd.read_parquet(os.path.join(sweep, "epochs.parquet"))
    with open(paths.markdown, encoding="utf-8") as f:
        md = f.read()
    return paths, md, trials, epochs


def _csv(paths, name):
    return pd.read_csv(paths.csv[name], keep_default_na=True)


def _seed_acc(trials, workload, strategy):
    t = trials[(trials.stage == "seed") & (trials.workload == workload) & (trials.strategy == strategy)
               & trials.status.isin(["ok", "diverged"])]
    return t.set_index("seed")["test_accuracy_final"].sort_index()


def test_every_section_present(report):
    paths, md, _, _ = report
    for heading in SECTIONS:
        assert heading in md
    for name in ("summary", "pairwise_vs_best", "pairwise_all", "ranks", "friedman", "iqm", "convergence",
                 "budget_curves", "generations", "final_lr", "normalised", "tuning_curves", "tuning_curves_summary"):
        assert os.path.exists(paths.csv[name])
    for name in ("forest_synthetic", "accuracy_synthetic", "curves_rte", "cd_diagram", "budget_cifar10",
                 "performance_profiles", "sensitivity_lr_rte", "search_rte", "compute_cifar10", "pairs_rte",
                 "lr_synthetic", "dals_synthetic", "tuning_curves_rte"):
        assert os.path.getsize(paths.plots[name]["png"]) > 1000
        assert os.path.getsize(paths.plots[name]["svg"]) > 1000


def test_summary_numbers_equal_direct_computation(report):
    paths, md, trials, _ = report
    summary = _csv(paths, "summary").set_index(["workload", "strategy"])
    acc = _seed_acc(trials, "synthetic", "sgdr").to_numpy()
    row = summary.loc[("synthetic", "sgdr")]
    assert row["n"] == 5
    assert row["mean"] == pytest.approx(acc.mean())
    assert row["sd"] == pytest.approx(acc.std(ddof=1))
    ci = scipy.stats.t.interval(0.95, df=4, loc=acc.mean(), scale=scipy.stats.sem(acc))
    ci = pd.Series({"low": ci[0], "high": ci[1]})
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high))
    best_epoch = trials[(trials.stage == "seed") & (trials.workload == "synthetic")
                        & (trials.strategy == "sgdr")]["test_accuracy_best"].mean()
    assert row["best_epoch_mean"] == pytest.approx(best_epoch)
    # Shown as percent with one decimal, the CI in brackets.
    assert f"| sgdr | 2 | 5 | {100 * acc.mean():.1f} |" in md
    assert f"[{100 * ci.low:.1f}, {100 * ci.high:.1f}]" in md
    # The ranking follows the means, best marked in bold.
    syn = summary.loc["synthetic"].sort_values("rank")
    assert list(syn["mean"]) == sorted(syn["mean"], reverse=True)
    assert f"| 1 | **{syn.index[0]}** |" in md


def test_diverged_run_counts_with_its_accuracy(report):
    paths, md, trials, _ = report
    row = _csv(paths, "summary").set_index(["workload", "strategy"]).loc[("cifar10", "fixed_sgd")]
    acc = _seed_acc(trials, "cifar10", "fixed_sgd")
    assert row["diverged"] == 1 and row["n"] == 5
    assert row["mean"] == pytest.approx(acc.mean())
    assert "| 1/5 |" in md


def test_pairwise_equals_scipy_and_statsmodels(report):
    paths, _, trials, _ = report
    vs = _csv(paths, "pairwise_vs_best")
    summary = _csv(paths, "summary")
    rte = vs[vs.workload == "rte"].reset_index(drop=True)
    best = summary[(summary.workload == "rte") & (summary["rank"] == 1)]["strategy"].item()
    p_t, p_w = [], []
    for r in rte.itertuples():
        assert r.a == best
        pair = pd.concat([_seed_acc(trials, "rte", r.a), _seed_acc(trials, "rte", r.b)], axis=1).dropna()
        tt = scipy.stats.ttest_rel(pair.iloc[:, 0], pair.iloc[:, 1])
        wr = scipy.stats.wilcoxon(pair.iloc[:, 0], pair.iloc[:, 1])
        assert (r.t, r.p_t, r.p_w) == pytest.approx((tt.statistic, tt.pvalue, wr.pvalue))
        d = pair.iloc[:, 0] - pair.iloc[:, 1]
        assert r.cohen_d == pytest.approx(d.mean() / d.std(ddof=1))
        tost = ttost_paired(pair.iloc[:, 0].to_numpy(), pair.iloc[:, 1].to_numpy(), -0.005, 0.005)[0]
        assert r.p_tost == pytest.approx(tost)
        lo, hi = scipy.stats.t.interval(0.95, df=len(d) - 1, loc=d.mean(), scale=scipy.stats.sem(d))
        assert (r.diff_ci_low, r.diff_ci_high) == pytest.approx((lo, hi))
        # Power at Holm's strictest level for the 3 comparisons with the best, by statsmodels.
        assert r.mdd == pytest.approx(d.std(ddof=1) * TTestPower().solve_power(nobs=len(d), alpha=0.05 / 3,
                                                                              power=0.8), rel=1e-5)
        p_t.append(tt.pvalue)
        p_w.append(wr.pvalue)
    np.testing.assert_allclose(rte["p_t_holm"], multipletests(p_t, method="holm")[1])
    np.testing.assert_allclose(rte["p_w_holm"], multipletests(p_w, method="holm")[1])
    # worse / equivalent / inconclusive exactly as the Holm-corrected t-test and TOST say.
    merged = summary[summary.workload == "rte"].merge(rte, left_on="strategy", right_on="b",
                                                      suffixes=("_summary", "_pair"))
    expected = ["worse" if p < 0.05 else "equivalent" if q < 0.05 else "inconclusive"
                for p, q in zip(merged["p_t_holm"], merged["p_tost_holm"], strict=True)]
    assert list(merged["outcome_summary"]) == list(merged["outcome_pair"]) == expected
    # All pairs: 4 strategies -> 6 pairs per workload.
    assert (_csv(paths, "pairwise_all").groupby("workload").size() == 6).all()


def test_friedman_and_ranks_equal_scipy(report):
    paths, md, trials, _ = report
    seed = trials[(trials.stage == "seed") & trials.status.isin(["ok", "diverged"])]
    means = seed.pivot_table(index="workload", columns="strategy", values="test_accuracy_final")
    chi2, p = scipy.stats.friedmanchisquare(*means.to_numpy().T)
    fr = _csv(paths, "friedman").iloc[0]
    assert (fr["chi2"], fr["p"]) == pytest.approx((chi2, p))
    ranks = _csv(paths, "ranks").set_index("strategy")["avg_rank"]
    expected = means.rank(axis=1, ascending=False).mean()
    pd.testing.assert_series_equal(ranks.sort_index(), expected.sort_index(), check_names=False)
    assert f"chi2 = {chi2:.2f}" in md


def test_normalised_iqm_equals_direct_computation(report):
    paths, _, trials, _ = report
    iqm = _csv(paths, "iqm").set_index("strategy")
    seed = trials[(trials.stage == "seed") & trials.status.isin(["ok", "diverged"])]
    # trec6 has one seed per strategy; it is normalised like the others.
    best = seed.groupby(["workload", "strategy"])["test_accuracy_final"].mean().groupby("workload").max()
    chance = seed.groupby("workload")["chance_accuracy"].first()
    per_workload = []
    for workload, g in seed[seed.strategy == "dals"].groupby("workload"):
        norm = (g["test_accuracy_final"] - chance[workload]) / (best[workload] - chance[workload])
        per_workload.append(scipy.stats.trim_mean(norm, 0.25))
    assert iqm.loc["dals", "iqm"] == pytest.approx(np.mean(per_workload))
    assert iqm.loc["dals", "ci_low"] <= iqm.loc["dals", "iqm"] <= iqm.loc["dals", "ci_high"]
    # The best strategy on every workload has normalised mean 1 there.
    norm = _csv(paths, "normalised")
    means = norm.groupby(["workload", "strategy"])["normalised"].mean().groupby("workload").max()
    np.testing.assert_allclose(means, 1.0)


@pytest.mark.parametrize("workload", ["synthetic", "cifar10", "rte", "trec6"])
def test_a_ten_point_drop_on_any_workload_moves_the_iqm_and_the_profiles(report, workload):
    from reports import tables
    from reports.load import load_results

    paths, _, _, _ = report
    res = load_results([os.path.dirname(os.path.dirname(paths.markdown))])
    strategies = ["adamw", "dals", "fixed_sgd", "sgdr"]
    workloads = ["cifar10", "rte", "synthetic", "trec6"]

    def aggregates(res):
        summary, _ = tables.summary_and_vs_best(res)
        runs, _ = tables.normalised_scores(res, summary)
        iqm, prof = tables.iqm_and_profiles(runs, strategies, workloads, taus=np.linspace(-1, 1.2, 221))
        return iqm.set_index("strategy")["iqm"], prof[prof.strategy == "adamw"]["fraction"].to_numpy()

    before_iqm, before_prof = aggregates(res)
    hit = (res.trials["workload"] == workload) & (res.trials["strategy"] == "adamw") & (res.trials["stage"] == "seed")
    res.trials.loc[hit, "test_accuracy_final"] -= 0.10
    after_iqm, after_prof = aggregates(res)
    assert after_iqm["adamw"] < before_iqm["adamw"] - 0.01
    assert not np.allclose(after_prof, before_prof)


def test_convergence_equals_direct_computation(report):
    paths, md, trials, epochs = report
    conv = _csv(paths, "convergence").set_index(["workload", "strategy", "threshold"])
    ids = trials[(trials.stage == "seed") & (trials.workload == "synthetic") & (trials.strategy == "adamw")]
    ep = epochs[epochs.trial_id.isin(ids.trial_id)].sort_values(["trial_id", "epoch"])
    first, secs = [], []
    for _, g in ep.groupby("trial_id"):
        hit = np.flatnonzero(g["test_accuracy"].to_numpy() >= 0.8)
        if hit.size:
            first.append(g["epoch"].iloc[hit[0]])
            secs.append(g["seconds"].iloc[: hit[0] + 1].sum())
    row = conv.loc[("synthetic", "adamw", 0.8)]
    assert row["reached"] == len(first) and row["n"] == 5
    assert row["epochs_mean"] == pytest.approx(np.mean(first))
    assert row["seconds_mean"] == pytest.approx(np.mean(secs))
    assert "| strategy | 60% | 80% | total (s) |" in md


def test_budget_curve_is_best_so_far_in_trial_order(report):
    paths, _, trials, _ = report
    curves = _csv(paths, "budget_curves")
    c = curves[(curves.workload == "cifar10") & (curves.strategy == "sgdr")]
    tune = trials[(trials.stage == "tune") & (trials.workload == "cifar10") & (trials.strategy == "sgdr")]
    vals = tune.sort_values("trial_index")["val_accuracy_final"].to_numpy()
    np.testing.assert_allclose(c["best_so_far"], np.maximum.accumulate(vals))
    assert c["expected_max"].iloc[0] == pytest.approx(vals.mean())
    assert c["expected_max"].iloc[-1] == pytest.approx(vals.max())


def test_budget_curves_rank_by_the_score_the_sweep_selected_by(tmp_path):
    from reports import tables
    from reports.load import load_results

    write_fixture(str(tmp_path), workloads=("synthetic",), strategies=("adamw", "dals"), selection="best")
    res = load_results([str(tmp_path)])
    curves, summary = tables.budget_curves(res)
    assert set(summary["metric"]) == {"val_accuracy_best"}
    tune = res.tune_runs()
    for strategy, g in tune.groupby("strategy"):
        vals = g.sort_values("trial_index")["val_accuracy_best"].to_numpy()
        got = curves[curves.strategy == strategy]["best_so_far"].to_numpy()
        np.testing.assert_allclose(got, np.maximum.accumulate(vals))
    md = open(build_report([str(tmp_path)], str(tmp_path / "out")).markdown, encoding="utf-8").read()
    assert "selection `best`: by `val_accuracy_best`" in md


def test_generations_table(report):
    paths, md, _, _ = report
    g = _csv(paths, "generations")
    assert list(g["generation"].astype(str)) == ["1", "2", "3", "SOTA"]
    assert "| SOTA | dals |" in md


def test_html_is_self_contained_with_embedded_images(report):
    paths, md, _, _ = report
    with open(paths.html, encoding="utf-8") as f:
        page = f.read()
    images = page.split('src="data:image/png;base64,')[1:]
    assert len(images) == md.count("![") == len(paths.plots) == 4 * 11 + 2  # 11 per workload, 2 across
    assert base64.b64decode(images[0].split('"')[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<table>" in page and "plots/" not in page.split("<body>")[1].split("Files")[0]


@pytest.fixture
def small(tmp_path):
    """A cheap two-workload, two-strategy sweep for the behaviour tests."""
    def make(name="a", **kwargs):
        kwargs = {"workloads": ("synthetic", "rte"), "strategies": ("dals", "adam"), "seeds": (0, 1, 2),
                  "tune_trials": 3, "epochs": 3, "diverge": None, **kwargs}
        d = str(tmp_path / name)
        write_fixture(d, **kwargs)
        return d
    return make


def test_same_parquet_gives_identical_files_without_ray_or_torch(small, tmp_path, monkeypatch):
    """Build once in a fresh interpreter (checking it never imports ray or torch), its figures rendered
    by worker processes, and once here with one CPU, so rendered in turn: the same bytes."""
    d = small(workloads=("synthetic",))
    code = (
        "import sys, json\n"
        "from reports import build_report\n"
        f"build_report([{d!r}], {str(tmp_path / 'r1')!r}, svg=True)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'torch'))))\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    monkeypatch.setattr(drawing.os, "sched_getaffinity", lambda pid: {0})
    b = build_report([d], str(tmp_path / "r2"), svg=True)
    files = [b.markdown, b.html, *b.csv.values(), *(p[ext] for p in b.plots.values() for ext in ("png", "svg"))]
    assert len(files) == 2 + 17 + 2 * 10  # md, html, CSVs (no IQM with one workload), 10 figures (no pairs of 2)
    for f in files:
        other = os.path.join(str(tmp_path / "r1"), os.path.relpath(f, b.out_dir))
        with open(f, "rb") as x, open(other, "rb") as y:
            assert x.read() == y.read(), f


def test_report_with_a_cd_diagram_is_identical_whatever_the_string_hash_seed(small, tmp_path):
    """The CD diagram (scikit-posthocs) used to follow the per-process string hash: the same Parquet gave
    another report.html in another process."""
    d = small(workloads=("synthetic", "cifar10", "rte"), strategies=("dals", "adam", "sgdr", "lion"))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = f"from reports import build_report\nbuild_report([{d!r}], {str(tmp_path / 'r')!r})\n"
    pages = []
    for hash_seed in ("1", "2"):
        subprocess.run([sys.executable, "-c", code], cwd=root, check=True,
                       env={**os.environ, "PYTHONHASHSEED": hash_seed})
        with open(tmp_path / "r" / "report.html", "rb") as f:
            pages.append(f.read())
    assert b"critical-difference diagram" in pages[0]
    assert pages[0] == pages[1]


def test_mixed_spec_hashes_are_refused_unless_allowed(small, tmp_path, capsys):
    a = small("a", spec_hash="aaaaaaaaaaaaaaaa", strategies=("dals",))
    b = small("b", spec_hash="bbbbbbbbbbbbbbbb", strategies=("adam",))
    with pytest.raises(MixedResultsError, match="different spec hashes: aaaaaaaaaaaaaaaa in .*/a; bbbbbbbbbbbbbbbb"):
        build_report([a, b], str(tmp_path / "r"))
    assert main([a, b, "--out", str(tmp_path / "r")]) == 2
    assert "mixed results: refusing to combine results" in capsys.readouterr().err
    paths = build_report([a, b], str(tmp_path / "r"), allow_mixed=True)
    with open(paths.markdown, encoding="utf-8") as f:
        md = f.read()
    assert "## Warning: mixed results (--allow-mixed)" in md
    assert "bbbbbbbbbbbbbbbb" in md
    # Two strategies: no Friedman test, and the ranks come with the warning that they are no evidence.
    assert "they are no evidence that one strategy is better than another" in md
    # Two workloads: no IQM, and the report says why.
    assert "IQM and performance profiles need at least 3 normalisable workloads (have 2)" in md


def test_unequal_budgets_and_repeated_pairs_are_refused(small):
    a = small("a", strategies=("dals",))
    b = small("b", strategies=("adam",), trials_planned=5)
    with pytest.raises(MixedResultsError, match=r"workload 'rte': trials_planned differs \(3: dals; 5: adam\)"):
        build_report([a, b])
    with pytest.raises(MixedResultsError, match="appears in both"):
        build_report([a, a])


def test_single_seed_workload_gets_a_statement_instead_of_a_p_value(report):
    paths, md, _, _ = report
    assert "**Only one seed per strategy on trec6**" in md
    vs = _csv(paths, "pairwise_vs_best")
    trec = vs[vs.workload == "trec6"]
    assert len(trec) == 3 and trec["p_t"].isna().all() and trec["p_t_holm"].isna().all()
    assert trec["note"].str.contains("n = 1 paired seed\\(s\\): too few for any test").all()
    summary = _csv(paths, "summary")
    assert list(summary[summary.workload == "trec6"]["outcome"]) == ["best", "untested", "untested", "untested"]
    assert "| untested | n/a | n/a | n/a |" in md


def test_cli_bad_input_exits_2(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    assert "no trials table" in capsys.readouterr().err
    assert main([str(tmp_path), "--thresholds", "90,95"]) == 2
    assert "fractions in (0, 1]" in capsys.readouterr().err
    assert main([str(tmp_path), "--margin", "0"]) == 2
    assert "--margin is in percentage points" in capsys.readouterr().err
