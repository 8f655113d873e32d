"""The notebooks: conventions checked statically (fast), then every notebook executed with
papermill in its ``smoke`` form, in order, into one shared output folder (slow), and the
numbers and figures they recorded checked."""
from __future__ import annotations

import ast
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest
from PIL import Image

from conftest import shared_path
from drbn import reproduce
from drbn.data import describe
from drbn.weights import STAGE1_FILENAME, find_released

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
STEMS = [p.stem for p in PATHS]
SHARED_PARAMETERS = {"PRESET", "DATA", "OUT", "INTERACTIVE", "SEED", "SOLUTIONS"}
# what JupyterLab writes into a notebook's metadata on opening; committed, so an untouched
# notebook stays unmodified
LANGUAGE_INFO_KEYS = {"name", "version", "mimetype", "codemirror_mode", "pygments_lexer", "nbconvert_exporter",
                      "file_extension"}
SOLUTION_HINT = "Set SOLUTIONS = True to run the solution."

# figures each notebook must write under OUT/figures (notebooks not listed: at least one PNG
# named after them is not required, but every PNG written must be a readable image)
EXPECTED_FIGURES = {
    "00_setup_check": ["00_sample_pair"],
    "01_low_light_data": ["01_test_pair", "01_histograms", "01_darkening_steps", "01_noise_model",
                          "01_brightness", "01_baselines", "01_training_batch"],
    "02_recursive_band_learning": ["02_architecture", "02_band_targets", "02_stage1_history", "02_recursions",
                                   "02_negated_optimum", "02_quality_vs_compute"]
    + (["02_released_vs_ours"] if find_released(STAGE1_FILENAME) else []),
    "03_band_recomposition": ["03_bands", "03_band_scaling", "03_weights_before", "03_sorted_channels",
                              "03_high_quality_photos", "03_stage2_history", "03_before_after",
                              "03_weights_after", "03_unpaired_before_after"],
    "04_ablations": ["04_gamma_fit", "04_negated_optimum", "04_metrics", "04_recursions", "04_training_curves",
                     "04_comparison", "04_ladder"],
    "05_figures": ["05_teaser", "05_teaser_night", "05_bands", "05_recursions", "05_weight_maps",
                   "05_results_table"],
    "06_explorer": ["06_explore", "06_explore_photo", "06_recursions"],
}


def test_notebooks_exist():
    assert STEMS, f"no notebooks in {NOTEBOOKS}"
    for stem in EXPECTED_FIGURES:
        assert stem in STEMS, f"{stem}.ipynb is missing from {NOTEBOOKS}"


# ----------------------------------------------------------------------------- static
@pytest.mark.parametrize("path", PATHS, ids=STEMS)
def test_parameters_cell(path):
    """One cell tagged `parameters`, literals only, with the shared names."""
    found = papermill.inspect_notebook(str(path))
    shared = SHARED_PARAMETERS - {"SEED"} | {"SEEDS"} if path.stem == "04_ablations" else SHARED_PARAMETERS  # a list of seeds
    assert shared <= found.keys(), f"{path.name} lacks {shared - found.keys()}"
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name} has {len(tagged)} cells tagged 'parameters'"
    for node in ast.parse(tagged[0].source).body:
        assert isinstance(node, ast.Assign), f"{path.name}: parameters cell holds {ast.dump(node)[:60]}"
        ast.literal_eval(node.value)  # raises if a default is not a literal
    assert found["SOLUTIONS"]["default"] == "False", f"{path.name}: a student's Run All must not run the solutions"


@pytest.mark.parametrize("path", PATHS, ids=STEMS)
def test_committed_clean(path):
    """No outputs, no execution counts, kernelspec python3."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    language_info = nb.metadata.get("language_info", {})
    assert language_info.get("name") == "python" and LANGUAGE_INFO_KEYS <= language_info.keys(), (
        f"{path.name}: language_info lacks {LANGUAGE_INFO_KEYS - language_info.keys()} (JupyterLab would add them)")
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs, f"{path.name} cell {index} has outputs"
            assert cell.execution_count is None, f"{path.name} cell {index} has an execution count"


@pytest.mark.parametrize("path", PATHS, ids=STEMS)
def test_chapter_structure(path):
    """Title and 'What you will learn' first, 'Summary' and 'Exercises' at the end, and
    interaction only through `interact` under `if INTERACTIVE:`."""
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert "What you will learn" in nb.cells[0].source
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "## Summary" in markdown and "## Exercises" in markdown
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            python = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                               for line in cell.source.splitlines())
            try:
                ast.parse(python)
            except SyntaxError as exc:
                pytest.fail(f"{path.name} cell {index} is not valid Python: {exc}")
            assert "interact_manual" not in cell.source
            if "interact(" in cell.source:
                assert cell.source.lstrip().startswith("if INTERACTIVE:")


# ----------------------------------------------------------------------------- executed
def execute_smoke(path: Path, out: Path) -> None:
    """Execute one notebook with the smoke preset, OUT = ``out``, into ``out/executed``."""
    (out / "executed").mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TQDM_DISABLE", "1")
        patch.setenv("MPLBACKEND", "Agg")
        papermill.execute_notebook(
            str(path), str(out / "executed" / path.name),
            # the synthetic set whatever data/LOL/ holds: smoke runs stay seconds on every machine
            parameters={"PRESET": "smoke", "INTERACTIVE": False, "OUT": str(out), "DATA": "synthetic",
                        "SOLUTIONS": True},
            kernel_name="python3", cwd=str(NOTEBOOKS), progress_bar=False,
        )


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Run every notebook once, in order, with the smoke preset into one shared OUT.
    Returns (OUT, {stem: None or the error})."""
    out = tmp_path_factory.mktemp("notebooks_out")
    errors = {}
    for path in PATHS:
        try:
            execute_smoke(path, out)
            errors[path.stem] = None
        except Exception as exc:  # reported per notebook by the tests below
            errors[path.stem] = exc
    return out, errors


def record_of(executed, stem: str) -> dict:
    """What notebook ``stem`` recorded in the shared run; skipped if it failed (reported
    by test_notebook_runs_and_records)."""
    out, errors = executed
    if errors.get(stem) is not None:
        pytest.skip(f"{stem} failed; reported by test_notebook_runs_and_records")
    return load_record(out, stem)


def assert_solutions_ran(executed: Path) -> None:
    """Every solution cell of an executed notebook ran its work (SOLUTIONS = True), not the hint."""
    nb = nbformat.read(executed, as_version=4)
    solutions = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    for index, cell in enumerate(solutions, 1):
        text = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
        assert SOLUTION_HINT not in text, f"{executed.name}: solution {index} printed its hint instead of running"
        assert cell.outputs, f"{executed.name}: solution {index} shows nothing"


def load_record(out: Path, stem: str) -> dict:
    path = out / "records" / f"{stem}.json"
    assert path.is_file(), f"{stem} recorded no numbers (expected {path})"
    return json.loads(path.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("stem", STEMS)
def test_notebook_runs_and_records(executed, stem):
    out, errors = executed
    if errors[stem] is not None:
        pytest.fail(f"{stem} failed under the smoke preset: {errors[stem]}")
    values = load_record(out, stem)
    assert values, f"{stem} recorded an empty dict"
    assert_solutions_ran(out / "executed" / f"{stem}.ipynb")
    for key, value in values.items():
        if "loss" in key and isinstance(value, (int, float)):
            assert math.isfinite(value), f"{stem}: {key} = {value}"


@pytest.mark.slow
def test_stage1_loss_falls(executed):
    values = record_of(executed, "02_recursive_band_learning")
    assert values["stage1_parameters"] == 557_668 and values["rdb_parameters"] == 8_880
    assert values["fixed_batch_loss_after"] < values["fixed_batch_loss_before"]
    assert values["last_loss"] < values["first_loss"]
    assert values["train_seconds"] > 0
    assert set(values["negated_channels"]) <= set("RGB")
    # the hand-written training step took the library's first steps (the cell asserts it too)
    assert len(values["hand_losses"]) >= 2 and values["hand_losses"] == pytest.approx(values["library_losses"])
    assert values["hand_losses"][0] == pytest.approx(values["first_loss"])
    assert len(values["recursion_psnr"]) == 4 and all(math.isfinite(v) for v in values["recursion_psnr"])
    along = values["ssim_along_line"]  # SSIM(t·x, x): 1 at t = 1, about 0 at t = 0
    assert along["1.0"] == pytest.approx(1.0) and abs(along["0.0"]) < 0.05
    negation = values["negation"]  # computed on the target shown: the lowest point, then the second maximum
    assert negation["second_t"] <= negation["lowest_t"] < 0
    assert negation["second_ssim"] >= negation["lowest_ssim"] and negation["ssim_minus_x"] == pytest.approx(along["-1.0"], abs=1e-4)


FIRST_NOTEBOOKS = ["00_setup_check", "01_low_light_data", "02_recursive_band_learning"]
FIRST_PARAMETERS = {"PRESET", "DATA", "HQ", "UNPAIRED", "OUT", "INTERACTIVE", "SEED", "THREADS"}


@pytest.mark.parametrize("stem", FIRST_NOTEBOOKS)
def test_first_notebooks_parameters_and_threads(stem):
    """00-02 take every parameter the runner passes, and leave PyTorch's thread count alone
    unless THREADS asks (no cap at two cores); a smoke run says its numbers mean nothing."""
    path = NOTEBOOKS / f"{stem}.ipynb"
    assert FIRST_PARAMETERS <= papermill.inspect_notebook(str(path)).keys()
    nb = nbformat.read(path, as_version=4)
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "set_num_threads(min(" not in source
    assert "if THREADS:\n    torch.set_num_threads(THREADS)" in source
    assert 'if SMOKE:\n    print("SMOKE RUN' in source


@pytest.mark.slow
def test_setup_check_records(executed):
    values = record_of(executed, "00_setup_check")
    assert values["required_missing"] == 0
    assert values["stage1_parameters"] == 557_668 and values["data"] == describe("synthetic")
    assert values["released_stage1_found"] == (find_released(STAGE1_FILENAME) is not None)


@pytest.mark.slow
def test_low_light_data_records(executed):
    values = record_of(executed, "01_low_light_data")
    assert values["data"] == describe("synthetic") and values["synthetic"]
    assert 0 < values["mean_low"] < values["mean_high"] <= 1
    assert values["median exposure ratio (synthetic)"] > 1


@pytest.mark.slow
def test_notebooks_01_02_on_real_photos(tmp_path):
    """01 and 02 in smoke mode on LOL pairs, with Kodak24 as the well-exposed photos: the
    real-data paths run, compare LOL with the camera model, and say which data they used."""
    data, hq = shared_path("data", "LOL"), shared_path("data", "hq", "kodak24")
    out = tmp_path / "out"
    (out / "executed").mkdir(parents=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TQDM_DISABLE", "1")
        patch.setenv("MPLBACKEND", "Agg")
        for stem in FIRST_NOTEBOOKS[1:]:
            papermill.execute_notebook(
                str(NOTEBOOKS / f"{stem}.ipynb"), str(out / "executed" / f"{stem}.ipynb"),
                parameters={"PRESET": "smoke", "INTERACTIVE": False, "OUT": str(out), "DATA": str(data),
                            "HQ": str(hq), "SOLUTIONS": True},
                kernel_name="python3", cwd=str(NOTEBOOKS), progress_bar=False,
            )
    low_light = load_record(out, "01_low_light_data")
    assert not low_light["synthetic"] and low_light["data"].startswith("LOL-v1")
    assert low_light["test_pairs"] == len(list((data / "eval15" / "low").iterdir()))
    for key in ("exposure ratio", "relative noise of y", "mean of x"):  # LOL beside the camera model
        assert math.isfinite(low_light[f"median {key} (LOL)"]) and math.isfinite(low_light[f"median {key} (synthetic)"])
    assert low_light["high_quality_photos"] == "24 (kodak24)"
    stage1 = load_record(out, "02_recursive_band_learning")
    assert stage1["data"].startswith("LOL-v1") and stage1["hand_losses"] == pytest.approx(stage1["library_losses"])
    if find_released(STAGE1_FILENAME) is not None:
        assert math.isfinite(stage1["released_test_psnr"]) and len(stage1["released_recursion_psnr"]) == 4
    for stem in FIRST_NOTEBOOKS[1:]:
        assert_solutions_ran(out / "executed" / f"{stem}.ipynb")
        for name in EXPECTED_FIGURES[stem]:
            assert (out / "figures" / f"{name}.png").is_file(), name


@pytest.mark.slow
def test_stage2_records(executed):
    values = record_of(executed, "03_band_recomposition")
    assert values["recomposer_parameters"] == 19_161
    assert values["discriminator_parameters"] == 4_691_329
    for key in ("stage1_test_psnr", "stage2_test_psnr", "stage1_test_ssim", "stage2_test_ssim",
                "by_hand_step_loss", "by_hand_step_loss_d"):
        assert math.isfinite(values[key]), key
    # the by-hand cells assert agreement with the library; the record says they ran
    assert values["by_hand_bands"] and values["by_hand_recomposition"]
    # the released mapping w = 0.8 z + 0.6 starts near 0.6 (notebook 03 section 8 says so)
    assert 0.4 < values["mean_w1_before"] < 0.8
    assert values["unpaired_shown"]
    assert (executed[0] / "runs" / "stage2" / "stage2.pt").is_file()


@pytest.mark.slow
def test_ablation_records(executed):
    """04 scored every variant and baseline under one preset, printed the seeds it used and
    held its verdicts back in smoke mode."""
    from drbn.baselines import default_baselines
    from drbn.experiments import VARIANTS

    values = record_of(executed, "04_ablations")
    assert values["rows"] == len(VARIANTS) + len(default_baselines()) + 1  # + the paper's cited row
    for v in VARIANTS:
        assert math.isfinite(values[f"psnr {v.name}"]) and 0 < values[f"ssim {v.name}"] <= 1, v.name
    assert "'smoke' presets" in values["preset"] and values["seeds"] == [0]
    for v in VARIANTS:  # every trained stage-1 row names the seed it kept
        if v.stage == 1:
            assert len(values["seeds_used"][v.name]) == 1, v.name
    assert values["verdicts"] == {}, "a smoke run must not print verdicts"
    assert 0.1 <= values["best_gamma"] <= 1.0
    assert isinstance(values["restarted"], list) and isinstance(values["still_negated"], list)
    assert values["data"].startswith("synthetic")


@pytest.mark.slow
def test_figures_notebook_draws_from_the_earlier_runs(executed):
    values = record_of(executed, "05_figures")
    assert values["fallback"] == "" and values["results_from"].endswith("ablations")
    assert values["models_from"].startswith("notebook 03")
    rows = values["table_rows"]
    assert "kit stage 1+2 (notebook 03, preset smoke)" in rows and rows[-1].endswith("reported in the paper")
    assert values["teaser_columns"][0] == "input" and values["teaser_columns"][-1] == "ground truth"


@pytest.mark.slow
def test_explorer_describes_only_what_it_recorded(executed):
    values = record_of(executed, "06_explorer")
    psnrs = [values[k] for k in sorted(values) if k.startswith("psnr_recursion_")]
    assert len(psnrs) == 4 and all(math.isfinite(v) for v in psnrs)
    if values["model"].startswith("released"):  # trained weights: the description is drawn from the numbers
        assert ("does not rise steadily" in values["recursion_summary"]) == any(
            b < a for a, b in zip(psnrs, psnrs[1:]))
    else:
        assert values["recursion_summary"].startswith("held back")


@pytest.mark.slow
def test_figures_are_png_images(executed):
    out, errors = executed
    figures = out / "figures"
    for stem, names in EXPECTED_FIGURES.items():
        if errors.get(stem) is not None:
            continue  # reported by test_notebook_runs_and_records
        for name in names:
            assert (figures / f"{name}.png").is_file(), f"{stem} did not save {name}.png"
    written = sorted(figures.glob("*.png"))
    assert written
    for path in written:
        assert path.stat().st_size > 0, path.name
        with Image.open(path) as image:
            assert image.format == "PNG", path.name
            image.load()
            assert min(image.size) > 50, f"{path.name} is {image.size}"


@pytest.mark.slow
def test_figures_notebook_alone_falls_back_to_a_smoke_run(tmp_path):
    """05 run before 04 (and 02-03) says why and draws every figure from a smoke run."""
    out = tmp_path / "out"
    execute_smoke(NOTEBOOKS / "05_figures.ipynb", out)
    values = load_record(out, "05_figures")
    assert values["fallback"].startswith("no results in") and values["results_from"].endswith("figures_table")
    assert values["models_from"].startswith("notebook 03")  # trained here, as notebooks 02-03 would
    for name in EXPECTED_FIGURES["05_figures"]:
        assert (out / "figures" / f"{name}.png").is_file(), name


EXERCISE_NOTEBOOKS = ["03_band_recomposition", "04_ablations", "05_figures", "06_explorer"]


@pytest.mark.parametrize("stem", FIRST_NOTEBOOKS + EXERCISE_NOTEBOOKS)
def test_exercises_ship_hidden_solutions(stem):
    """After the Exercises heading, each numbered exercise is a markdown cell followed by its
    solution: a code cell tagged `solution`, collapsed, that the smoke runs execute."""
    nb = nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)
    start = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and "## Exercises" in c.source)
    tail = nb.cells[start:]
    exercises = [c for c in tail if c.cell_type == "markdown"]
    solutions = [c for c in tail if c.cell_type == "code"]
    assert len(exercises) == len(solutions) > 0, f"{stem}: {len(exercises)} exercises, {len(solutions)} solutions"
    for n, (exercise, sol) in enumerate(zip(tail[0::2], tail[1::2]), 1):
        assert exercise.cell_type == "markdown" and f"{n}. " in exercise.source, f"{stem}: exercise {n}"
        assert sol.cell_type == "code" and "solution" in sol.metadata.get("tags", []), f"{stem}: solution {n}"
        assert sol.metadata.get("jupyter", {}).get("source_hidden") is True, f"{stem}: solution {n} not collapsed"
        # a student's Run All skips the work (SOLUTIONS = False) and prints a one-line hint instead
        assert sol.source.startswith("if SOLUTIONS:\n"), f"{stem}: solution {n} runs without SOLUTIONS"
        assert "else:\n    print(" in sol.source and SOLUTION_HINT in sol.source.rsplit("else:", 1)[1], f"{stem}: solution {n}"


@pytest.mark.slow
def test_notebooks_03_to_06_on_real_photos(tmp_path):
    """03-06 in smoke mode on LOL pairs, Kodak24 as the discriminator's photos and LIME night
    photos: the real-data paths run and the records say which data they used."""
    data, hq, unpaired = shared_path("data", "LOL"), shared_path("data", "hq", "kodak24"), shared_path("data", "unpaired", "LIME")
    out = tmp_path / "out"
    (out / "executed").mkdir(parents=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TQDM_DISABLE", "1")
        patch.setenv("MPLBACKEND", "Agg")
        for stem in EXERCISE_NOTEBOOKS:
            papermill.execute_notebook(
                str(NOTEBOOKS / f"{stem}.ipynb"), str(out / "executed" / f"{stem}.ipynb"),
                parameters={"PRESET": "smoke", "INTERACTIVE": False, "OUT": str(out), "DATA": str(data),
                            "HQ": str(hq), "UNPAIRED": str(unpaired), "SOLUTIONS": True},
                kernel_name="python3", cwd=str(NOTEBOOKS), progress_bar=False,
            )
    for stem in EXERCISE_NOTEBOOKS:
        assert load_record(out, stem)["data"].startswith("LOL-v1"), stem
    assert load_record(out, "03_band_recomposition")["high_quality"] == str(hq)
    photos = {p.name for p in unpaired.iterdir()}
    assert load_record(out, "05_figures")["photo"] in photos and load_record(out, "06_explorer")["photo"] in photos
    for stem in EXERCISE_NOTEBOOKS:
        assert_solutions_ran(out / "executed" / f"{stem}.ipynb")
        for name in EXPECTED_FIGURES[stem]:
            assert (out / "figures" / f"{name}.png").is_file(), name


# ----------------------------------------------------------------------------- runner
@pytest.mark.slow
def test_reproduce_command_line(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "drbn.reproduce", "--preset", "smoke", "--only", "00", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ, "TQDM_DISABLE": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = (out / "summary.md").read_text()
    assert "00_setup_check" in summary and "| ok |" in summary
    assert (out / "notebooks" / "00_setup_check.ipynb").is_file()


def write_notebook(path: Path, cells: list[tuple[str, str]], name: str = "") -> Path:
    """A notebook of (kind, source) cells, kind "markdown", "code" or "parameters"; NAME in a
    source becomes ``repr(name)``."""
    nb = nbformat.v4.new_notebook()
    for kind, source in cells:
        if kind == "markdown":
            nb.cells.append(nbformat.v4.new_markdown_cell(source))
            continue
        cell = nbformat.v4.new_code_cell(source.replace("NAME", repr(name)))
        if kind == "parameters":
            cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


FAILING_CELLS = [
    ("markdown", "# A notebook that fails"),
    ("parameters", 'PRESET = "cpu"\nOUT = "../outputs"\nINTERACTIVE = True'),
    ("code", "x = 1"),
    ("code", 'raise ValueError("deliberate failure")'),
    ("code", "y = 2"),
]


@pytest.mark.slow
def test_reproduce_reports_a_failing_notebook(tmp_path, capsys):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    write_notebook(folder / "00_fails.ipynb", FAILING_CELLS)

    out = tmp_path / "out"
    assert reproduce.run("smoke", out=out, notebooks=folder) == 1
    summary = json.loads((out / "summary.json").read_text())
    status = summary["runs"][0]["status"]
    assert status.startswith("FAILED at cell"), status
    assert "ValueError" in status and "deliberate failure" in status
    assert "00_fails" in capsys.readouterr().out
    assert "FAILED" in (out / "summary.md").read_text()


def test_schedule_runs_04_beside_00_to_02_and_the_rest_after():
    phases = reproduce.schedule(PATHS)
    assert [[[p.stem[:2] for p in lane] for lane in lanes] for lanes in phases] == [
        [["00", "01", "02"], ["04"]], [["03"]], [["05"]], [["06"]]]
    one_at_a_time = [[[p.stem[:2] for p in lane] for lane in lanes] for lanes in reproduce.schedule(PATHS, False)]
    assert one_at_a_time == [[[s[:2]]] for s in STEMS]
    alone = [p for p in PATHS if p.stem.startswith(("03", "04", "05"))]  # nothing of 00-02: no second lane
    assert reproduce.schedule(alone) == [[[p]] for p in alone]


TIMED_CELLS = [
    ("parameters", 'PRESET = "cpu"\nOUT = "../outputs"\nINTERACTIVE = True\nTHREADS = 0'),
    ("code", "import json, time\nfrom pathlib import Path\nstarted = time.time()\ntime.sleep(2)"),
    ("code", "path = Path(OUT) / 'records' / (NAME + '.json')\npath.parent.mkdir(parents=True, exist_ok=True)\n"
             "path.write_text(json.dumps({'threads': THREADS, 'started': started, 'ended': time.time()}))"),
]


@pytest.mark.slow
def test_reproduce_runs_the_second_lane_at_the_same_time_with_half_the_threads(tmp_path, monkeypatch):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for stem in ("02_main_lane", "04_side_lane"):
        write_notebook(folder / f"{stem}.ipynb", TIMED_CELLS, stem)
    monkeypatch.setattr(reproduce, "default_threads", lambda: 4)  # as on a 4-core machine

    out = tmp_path / "out"
    assert reproduce.run("smoke", out=out, notebooks=folder) == 0
    main, side = (json.loads((out / "records" / f"{s}.json").read_text()) for s in ("02_main_lane", "04_side_lane"))
    assert main["threads"] == side["threads"] == 2
    assert main["started"] < side["ended"] and side["started"] < main["ended"]  # they overlapped
    summary = json.loads((out / "summary.json").read_text())
    assert [r["beside"] for r in summary["runs"]] == ["04", "02"]
    assert summary["wall_seconds"] > 2

    out = tmp_path / "one_at_a_time"
    assert reproduce.run("smoke", out=out, notebooks=folder, sequential=True) == 0
    main, side = (json.loads((out / "records" / f"{s}.json").read_text()) for s in ("02_main_lane", "04_side_lane"))
    assert main["threads"] == side["threads"] == 0 and main["ended"] <= side["started"]

