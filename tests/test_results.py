"""Results: labels, formatting, atomic writing, the record, and seed-aware verdicts."""
import csv
import math

import numpy as np
import pytest

from drbn.errors import DRBNError
from drbn.results import (
    LABELS, SCORES, TABLE_COLUMNS, Result, compare, effects, format_value, label, markdown_table,
    mean_std, read_json, read_results, summarize, table_row, write_csv, write_json, write_text_atomic,
)


def test_one_label_per_short_key():
    assert set(SCORES) == {"psnr", "ssim", "psnr_shave10", "psnr_gtmean"}
    assert label("psnr") == "PSNR (full image)" and label("ssim") == "SSIM (full image)"
    assert label("psnr_shave10") == "PSNR (10-px border shaved, as released)"
    assert label("psnr_gtmean") == "PSNR after GT-mean gain"
    assert label("inference_ms") == "ms per 600x400 image"
    assert label("psnr_std") == "PSNR (full image), std over seeds"
    assert label("unknown") == "unknown"
    assert all(c in LABELS for c in TABLE_COLUMNS)
    assert len(set(LABELS.values())) == len(LABELS)


def test_format_value():
    assert format_value("psnr", 18.8049) == "18.80"
    assert format_value("ssim", 0.83012) == "0.830"
    assert format_value("psnr", (18.804, 0.312)) == "18.80 ± 0.31"
    assert format_value("psnr", (18.804, None)) == "18.80"
    assert format_value("parameters", 557668) == "557,668"
    assert format_value("inference_ms", 1234.4) == "1234" and format_value("inference_ms", 2.34) == "2.3"
    assert format_value("psnr", None) == "—" == format_value("ssim", math.nan)
    assert format_value("psnr", math.inf) == "inf"
    assert format_value("notes", "a note") == "a note"
    assert format_value("psnr", np.float32(20.0)) == "20.00"


def test_markdown_table_has_labels_and_mean_std():
    rows = [{"variant": "a", "psnr": 18.0, "psnr_std": 0.5, "ssim": 0.8, "seeds": 3},
            {"variant": "b", "psnr": 17.0, "notes": "x | y"}]
    text = markdown_table(rows, ("variant", "psnr", "ssim", "seeds", "notes"), header=["Data: test."])
    lines = text.splitlines()
    assert lines[0] == "Data: test." and lines[2].startswith("| method | PSNR (full image) | SSIM (full image)")
    assert "| a | 18.00 ± 0.50 | 0.800 | 3 | — |" in lines
    assert "| b | 17.00 | — | — | x / y |" in lines  # a pipe in a cell does not split it


def test_csv_header_is_short_keys(tmp_path):
    path = write_csv([{"variant": "a", "psnr": 18.5, "psnr_std": None, "extra": 1}], tmp_path / "r.csv",
                     ("variant", "psnr", "psnr_std"))
    with open(path) as f:
        table = list(csv.DictReader(f))
    assert table == [{"variant": "a", "psnr": "18.5", "psnr_std": ""}]


def test_atomic_writes_leave_no_temporary_files(tmp_path):
    write_text_atomic(tmp_path / "sub" / "a.txt", "one")
    write_text_atomic(tmp_path / "sub" / "a.txt", "two")
    assert (tmp_path / "sub" / "a.txt").read_text() == "two"
    assert [p.name for p in (tmp_path / "sub").iterdir() if p.name != ".drbn-outputs"] == ["a.txt"]
    write_json(tmp_path / "p.json", {"x": np.float64(1.5), "t": (1, 2), "p": tmp_path})
    assert read_json(tmp_path / "p.json") == {"x": 1.5, "t": [1, 2], "p": str(tmp_path)}


def test_corrupt_or_missing_json_is_one_clear_error(tmp_path):
    path = tmp_path / "result.json"
    path.write_text('{"key": {"a": 1}, "fin')  # truncated mid-write by an older writer
    with pytest.raises(DRBNError, match=r"result\.json is truncated or corrupt.*delete it"):
        read_json(path)
    with pytest.raises(DRBNError, match="truncated or corrupt"):
        Result.load(path)
    path.write_text('{"something": "else"}')
    with pytest.raises(DRBNError, match="not one this kit writes"):
        Result.load(path)
    with pytest.raises(DRBNError, match="not found"):
        read_json(tmp_path / "absent.json", "results table")


def test_result_round_trips(tmp_path):
    record = Result({"config": {"steps": 2}}, True, {"psnr": 18.0, "ssim": 0.8}, parameters=10, seed=1000,
                    restarts=["seed 0: G negated at step 50, restarted"])
    record.save(tmp_path / "result.json")
    assert Result.load(tmp_path / "result.json") == record


def test_summarize_gives_mean_std_and_seed_count():
    runs = [Result({}, True, {"psnr": p, "ssim": s}, parameters=5, seed=seed, inference_ms=2.0)
            for p, s, seed in [(17.0, 0.70, 0), (18.0, 0.80, 1), (19.0, 0.90, 1002)]]
    row = summarize(runs)
    assert row["psnr"] == pytest.approx(18.0) and row["psnr_std"] == pytest.approx(1.0)
    assert row["ssim_std"] == pytest.approx(0.1)
    assert row["seeds"] == 3 and row["seeds_used"] == [0, 1, 1002] and row["parameters"] == 5
    one = summarize(runs[:1])
    assert one["psnr"] == 17.0 and one["psnr_std"] is None and one["seeds"] == 1
    assert mean_std([2.0]) == (2.0, None)
    with pytest.raises(DRBNError):
        summarize([])


def test_compare_calls_a_difference_real_only_beyond_the_combined_spread():
    rows = [{"variant": "a", "psnr": 19.0, "psnr_std": 0.3}, {"variant": "b", "psnr": 18.0, "psnr_std": 0.4},
            {"variant": "c", "psnr": 18.4, "psnr_std": 0.8}, {"variant": "d", "psnr": 15.0}]
    real = compare(rows, "a", "b")  # |1.0| > sqrt(0.09 + 0.16) = 0.5
    assert real["real"] is True and real["spread"] == pytest.approx(0.5) and real["delta"] == pytest.approx(1.0)
    assert real["verdict"].startswith("real")
    noise = compare(rows, "a", "c")  # |0.6| < sqrt(0.09 + 0.64)
    assert noise["real"] is False and noise["verdict"] == "within noise"
    single = compare(rows, "a", "d")
    assert single["real"] is None and single["verdict"] == "one seed: no spread known"
    with pytest.raises(DRBNError, match="no row named 'z'"):
        compare(rows, "a", "z")


def test_effects_skip_absent_rows_and_refuse_negated_ones():
    rows = [{"variant": "RBL-v1", "psnr": 15.0, "psnr_std": 0.1, "ssim": 0.6, "ssim_std": 0.01},
            {"variant": "RBL-v2", "psnr": 16.0, "psnr_std": 0.1, "ssim": 0.7, "ssim_std": 0.01},
            {"variant": "DRBN T=4", "psnr": 17.0, "ssim": 0.75},
            {"variant": "DRBN T=1", "psnr": 16.0, "ssim": 0.7, "negated": "B"}]
    found = {e["effect"]: e for e in effects(rows)}
    assert set(found) == {"multi-scale loss", "4 recursions instead of 1"}
    assert found["multi-scale loss"]["real"] is True
    assert found["multi-scale loss"]["delta_ssim"] == pytest.approx(0.1)
    assert found["4 recursions instead of 1"]["verdict"].startswith("not comparable: every run of DRBN T=1")


def test_the_committed_reference_table_matches_the_runner():
    """results/ holds the 3-seed cpu-ablation table notebook 04 compares with: it must read
    back, name its preset and seeds, and have a row for every current variant."""
    from pathlib import Path

    from drbn import experiments

    folder = Path(__file__).resolve().parents[1] / "results"
    table = read_results(folder)
    assert table["seeds"] == [0, 1, 2] and table["preset"] == experiments.ablation_preset("cpu-ablation").describe()
    rows = {r["variant"]: r for r in table["rows"]}
    assert {v.name for v in experiments.VARIANTS} <= rows.keys()
    assert all(rows[v.name]["seeds"] == 3 for v in experiments.VARIANTS)
    assert (folder / "README.md").read_text().count("--preset cpu-ablation") >= 2


def test_a_negated_run_is_left_out_of_its_rows_mean_and_counted():
    runs = [Result({}, True, {"psnr": p, "ssim": s}, parameters=5, seed=seed, negated=n)
            for p, s, seed, n in [(17.0, 0.70, 0, ""), (7.8, 0.27, 1, "RG"), (18.0, 0.80, 2, "")]]
    row = table_row("DRBN T=4", "stage 1", "", runs, 3)
    assert row["psnr"] == pytest.approx(17.5) and row["seeds"] == 2 and row["seeds_used"] == [0, 2]
    assert row["excluded"] == 1 and "1 of 3 seeds left out of the mean: negated channel" in row["notes"]
    assert row["negated"] == "seed 1: RG" and not row["only_negated"]
    # a row of negated runs only still shows them, flagged, and no verdict is drawn from it
    only = table_row("DRBN T=1", "stage 1", "", runs[1:2], 1)
    assert only["psnr"] == pytest.approx(7.8) and only["only_negated"] and only["excluded"] == 0
    other = {"variant": "DRBN T=4", "psnr": 17.0, "ssim": 0.75}
    (verdict,) = [e for e in effects([other, only]) if e["effect"] == "4 recursions instead of 1"]
    assert verdict["real"] is None and verdict["verdict"].startswith("not comparable: every run of DRBN T=1")
