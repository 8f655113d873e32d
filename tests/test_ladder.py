"""The budget ladder's verdicts and the long run's curve: the rules, on rows made up here."""
import json

import pytest

from drbn import viz
from drbn.curve import extrapolate, read_curve
from drbn.errors import DRBNError
from drbn.ladder import read_ladder, verdicts
from drbn.results import write_table


def row(name, psnr, psnr_std=None, ssim=0.7, ssim_std=None, **extra):
    return {"variant": name, "psnr": psnr, "psnr_std": psnr_std, "ssim": ssim, "ssim_std": ssim_std,
            "seeds": 1 if psnr_std is None else 3, **extra}


def test_each_claim_reads_supported_contradicted_or_within_noise():
    rows = [row("RBL-v1", 18.0, 0.2, 0.76, 0.01), row("RBL-v2", 17.3, 0.2, 0.77, 0.01),
            row("RBL-v3", 16.0, 0.3, 0.70, 0.01), row("DRBN T=4", 17.5, 0.3, 0.76, 0.01)]
    found = {v["claim"]: v for v in verdicts([(4, rows)])}
    band = found["the multi-scale band loss helps"]
    assert band["budget"] == 4 and band["psnr"]["word"] == "contradicted"  # -0.7 dB beyond sqrt(.04+.04)
    assert band["ssim"]["word"] == "within noise"  # +0.01 within sqrt(2) * 0.01
    assert found["recursion with feature residuals and the recursive input helps"]["psnr"]["word"] == "supported"
    assert found["more recursions help (T = 4 vs T = 1)"]["psnr"]["word"] == "within noise"  # 0.2 < 0.36


def test_one_seed_and_negated_rows_draw_no_verdict():
    rows = [row("RBL-v1", 18.0), row("RBL-v2", 17.0),
            row("RBL-v3", 16.0, 0.3), row("DRBN T=4", 7.8, 0.1, only_negated=True)]
    found = {v["claim"]: v for v in verdicts([(16, rows)])}
    assert found["the multi-scale band loss helps"]["psnr"]["word"] == "one seed: no spread known"
    assert found["recursion with feature residuals and the recursive input helps"]["ssim"]["word"].startswith("not comparable")
    assert set(found) == {"the multi-scale band loss helps", "recursion with feature residuals and the recursive input helps",
                          "more recursions help (T = 4 vs T = 1)"}


def test_read_ladder_finds_the_rungs_present(tmp_path):
    write_table(tmp_path / "1x", [row("RBL-v1", 18.0)], ["header"])
    write_table(tmp_path / "4x", [row("RBL-v1", 18.5)], ["header"])
    assert [(k, rows[0]["psnr"]) for k, rows in read_ladder(tmp_path)] == [(1, 18.0), (4, 18.5)]
    with pytest.raises(DRBNError, match="no ladder in"):
        read_ladder(tmp_path / "none")
    assert viz.plot_ladder(read_ladder(tmp_path), ["RBL-v1"]).axes  # draws a figure


def test_the_ladder_command_prints_verdicts_and_saves_its_figure(tmp_path, capsys):
    from drbn.ladder import main

    rows = [row("RBL-v1", 18.0, 0.2), row("RBL-v2", 17.0, 0.2)]
    write_table(tmp_path / "1x", rows, ["header"])
    main([str(tmp_path), "--figure", str(tmp_path / "out")])
    assert "| 1x | the multi-scale band loss helps" in capsys.readouterr().out
    assert (tmp_path / "out" / "figures" / "ladder.png").stat().st_size > 1000


def test_extrapolation_follows_a_log_line_and_says_when_it_does_not_rise(tmp_path):
    points = [{"step": s, "test_ssim": 0.70 + 0.02 * k} for k, s in enumerate((1000, 2000, 4000, 8000))]
    fit = extrapolate(points, "test_ssim", 0.80)
    assert fit["slope_per_doubling"] == pytest.approx(0.02)
    assert fit["step"] == pytest.approx(8000 * 2 ** 2) and not fit["reached"]  # two more doublings
    flat = extrapolate([{"step": s, "test_ssim": 0.75} for s in (1000, 2000)], "test_ssim", 0.80)
    assert flat["step"] is None
    with pytest.raises(DRBNError, match="at least 2 points"):
        extrapolate(points[:1], "test_ssim", 0.8)
    path = tmp_path / "curve.json"
    path.write_text(json.dumps({"points": [dict(p, step=p["step"], train_seconds=p["step"] / 2, val_psnr=17, val_ssim=.7,
                                                test_psnr=18, test_ssim=p["test_ssim"]) for p in points[::-1]]}))
    curve = read_curve(path)
    assert [p["step"] for p in curve["points"]] == [1000, 2000, 4000, 8000]
    assert viz.plot_quality_vs_compute(curve["points"], {"label": "released", "psnr": 18.8, "ssim": 0.83}, budget_step=1200).axes
    with pytest.raises(DRBNError, match="no curve at"):
        read_curve(tmp_path / "absent.json")


def test_the_verdict_table_has_one_line_per_claim_and_budget():
    rows = [row("RBL-v1", 18.0, 0.2, 0.76, 0.01), row("RBL-v2", 17.0, 0.2, 0.77, 0.01)]
    from drbn.ladder import verdict_table
    table = verdict_table([(1, rows), (4, rows)]).splitlines()
    assert len(table) == 2 + 2 and "| 4x | the multi-scale band loss helps (RBL-v2 vs RBL-v1) | -1.00 (0.28) | contradicted" in table[-1]
