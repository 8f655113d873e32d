"""Results: the record of one run, the one mapping from short keys to column labels, and
atomic csv/markdown/json writing; introduced in notebooks/04_ablations.

Data is keyed by short names (``psnr``, ``ssim``, ``psnr_shave10``, ``psnr_gtmean``,
``parameters``, ...) everywhere: in rows, CSV headers, JSON and histories. Labels such as
"PSNR (full image)" appear only when a table or figure is rendered (:data:`LABELS`).

A quantity measured over several seeds is a row's ``key`` (the mean) beside ``key_std``
(the standard deviation) and ``seeds`` (how many); :func:`compare` says whether a
difference between two rows is larger than their seed-to-seed spread.
"""
from __future__ import annotations

import csv
import io
import json
import math
import numbers
import os
import statistics
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from . import files
from .errors import DRBNError

SCORES = ("psnr", "ssim", "psnr_shave10", "psnr_gtmean")  # drbn.metrics.score's keys

LABELS = {  # short key -> column label: the one mapping
    "variant": "method",
    "group": "group",
    "description": "description",
    "psnr": "PSNR (full image)",
    "ssim": "SSIM (full image)",
    "psnr_shave10": "PSNR (10-px border shaved, as released)",
    "psnr_gtmean": "PSNR after GT-mean gain",
    "niqe": "NIQE (lower is better; no-reference, not a judgement of taste)",
    "parameters": "parameters",
    "train_seconds": "training s",
    "inference_ms": "ms per 600x400 image",
    "seeds": "seeds",
    "notes": "notes",
}

# The results table: PSNR/SSIM on the full 8-bit image are the headline.
TABLE_COLUMNS = ("variant", *SCORES, "parameters", "train_seconds", "inference_ms", "seeds", "notes")
STD = "_std"  # suffix of a column's standard deviation over seeds


def label(key: str) -> str:
    """The column label of a short key (the key itself when it has none)."""
    if key.endswith(STD) and key[: -len(STD)] in LABELS:
        return f"{LABELS[key[: -len(STD)]]}, std over seeds"
    return LABELS.get(key, key)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value == "") or (
        isinstance(value, numbers.Real) and math.isnan(value))


def format_value(key: str, value: Any) -> str:
    """``value`` of column ``key`` as a table shows it; ``(mean, std)`` renders as
    ``mean ± std`` (std left out when missing); None and NaN render as a dash."""
    if isinstance(value, (tuple, list)) and len(value) == 2 and key in SCORES:
        mean, std = value
        if _missing(std) or _missing(mean):
            return format_value(key, mean)
        return f"{format_value(key, mean)} ± {format_value(key, std)}"
    if _missing(value):
        return "—"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    value = float(value)
    if key == "ssim":
        return f"{value:.3f}"
    if key in SCORES:
        return f"{value:.2f}"
    if key in ("parameters", "seeds"):
        return f"{int(value):,}"
    if key == "train_seconds":
        return f"{value:.0f}"
    if key == "inference_ms":
        return f"{value:.0f}" if value >= 10 else f"{value:.1f}"
    return str(int(value)) if value.is_integer() else f"{value:g}"


def cell(row: Mapping[str, Any], key: str) -> str:
    """One table cell of ``row``: a score with a ``key_std`` beside it renders as mean ± std."""
    if key in SCORES and not _missing(row.get(key + STD)):
        return format_value(key, (row.get(key), row[key + STD]))
    return format_value(key, row.get(key))


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] = TABLE_COLUMNS,
                   header: Sequence[str] = ()) -> str:
    """A markdown table with the labels in its header, after the prose lines of ``header``."""
    lines = [*header, ""] if header else []
    lines += ["| " + " | ".join(label(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(cell(row, c).replace("|", "/") for c in columns) + " |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- writing
def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` through :func:`drbn.files.write_text`: a temporary file renamed into
    place, so a reader (or a second process) never sees half a file."""
    return files.write_text(path, text)


def jsonable(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), so keys compare equal."""
    return json.loads(json.dumps(value, default=files.plain))


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    """``payload`` as indented JSON, written atomically (:func:`drbn.files.write_json`)."""
    return files.write_json(path, payload)


def read_json(path: str | os.PathLike, what: str = "results file") -> Any:
    """The JSON in ``path``, or a DRBNError naming the file when it is missing or corrupt."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DRBNError(f"{what} not found: {path}; run the command that writes it first.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DRBNError(f"{what} {path} is truncated or corrupt ({exc.msg if hasattr(exc, 'msg') else exc}); "
                        "delete it and run again (the run it records is redone).") from None


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike, columns: Sequence[str]) -> Path:
    """``rows`` as CSV with the short keys as header; missing values are empty cells."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: "" if _missing(row.get(c)) else row.get(c) for c in columns})
    return write_text_atomic(path, buffer.getvalue())


# ----------------------------------------------------------------------------- the record
@dataclass
class Result:
    """What one run left in its folder (``result.json``): a network trained with one
    configuration and seed (or a baseline applied), scored on the test split.

    ``key`` says what produced it; a run is done when its folder holds a record with
    ``finished`` true and the same ``key``. A stage-1 run that fell into the negated-image
    optimum and was restarted lists each restart in ``restarts``; ``seed`` is the seed of
    the run that was kept.
    """

    key: dict
    finished: bool = False
    scores: dict[str, float] = field(default_factory=dict)  # mean over the test images
    per_image: list[dict] = field(default_factory=list)
    parameters: int | None = None
    train_seconds: float | None = None
    inference_ms: float | None = None
    seed: int | None = None
    restarts: list[str] = field(default_factory=list)
    negated: str = ""  # channels still anti-correlated with the target at the end
    notes: list[str] = field(default_factory=list)
    checkpoint: str | None = None  # relative to the output folder
    images: dict[str, str] = field(default_factory=dict)  # test image -> saved output, relative
    history: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def save(self, path: str | os.PathLike) -> Path:
        return write_json(path, asdict(self))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Result:
        payload = read_json(path, "result record")
        names = {f.name for f in fields(cls)}
        if not isinstance(payload, dict) or "key" not in payload or not set(payload) <= names:
            raise DRBNError(f"result record {path} is not one this kit writes; delete it and run again.")
        return cls(**payload)


def short_history(history: Mapping[str, list], points: int = 200) -> dict[str, list]:
    """A training history for the record: the loss curve thinned to at most ``points``
    evenly spaced steps, and every validation."""
    n = len(history.get("step", []))
    m = min(n, points)
    keep = sorted({round(i * (n - 1) / max(m - 1, 1)) for i in range(m)})
    return {"step": [history["step"][i] for i in keep], "loss": [history["loss"][i] for i in keep],
            **{k: list(history.get(k, [])) for k in ("eval_step", "psnr", "ssim")}}


def mean_std(values: Iterable[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n - 1); the std is None for a single value."""
    values = [float(v) for v in values]
    if not values:
        raise DRBNError("no values to average: run at least one seed first.")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def summarize(results: Sequence[Result]) -> dict[str, Any]:
    """The table cells of one row from its runs (one per seed): each score's mean and
    ``_std``, parameters, mean training time and inference time, the number of seeds."""
    if not results:
        raise DRBNError("no finished runs to summarize.")
    row: dict[str, Any] = {}
    for key in SCORES:
        values = [r.scores[key] for r in results if key in r.scores]
        if values:
            row[key], row[key + STD] = mean_std(values)
    row["parameters"] = results[0].parameters
    for key in ("train_seconds", "inference_ms"):
        values = [getattr(r, key) for r in results if not _missing(getattr(r, key))]
        row[key] = statistics.fmean(values) if values else None
    row["seeds"] = len(results)
    row["seeds_used"] = [r.seed for r in results]
    return row


def table_row(name: str, group: str, description: str, records: Sequence[Result], expected: int,
              why_missing: str | None = None) -> dict[str, Any]:
    """One row of the results table from the finished records of its runs (one per seed,
    ``expected`` in all): the summary, notes, and the first run's images and history."""
    row: dict[str, Any] = {"variant": name, "group": group, "description": description}
    if records:
        # a run left in the negated optimum is a failed run, not a sample of the variant's quality:
        # it is kept out of the mean and counted (a row of negated runs only shows them, flagged)
        kept = [r for r in records if not r.negated] or list(records)
        excluded = 0 if kept[0].negated else len(records) - len(kept)
        notes = [*dict.fromkeys(n for r in records for n in r.notes)]
        if excluded:
            notes.append(f"{excluded} of {len(records)} seeds left out of the mean: negated channel")
        row.update(summarize(kept), notes="; ".join(notes), excluded=excluded,
                   negated="; ".join(f"seed {r.seed}: {r.negated}" for r in records if r.negated),
                   only_negated=bool(kept[0].negated),
                   **{k: getattr(kept[0], k) for k in ("images", "per_image", "history", "settings")})
    if why_missing or len(records) < expected:
        row["notes"] = why_missing or f"{expected - len(records)} of {expected} runs not done yet"
    return row


def write_table(out_dir: str | os.PathLike, rows: Sequence[Mapping[str, Any]], header: Sequence[str],
                **fields_: Any) -> None:
    """``results.csv`` (short keys, with ``_std`` columns), ``results.md`` (labels, the
    ``header`` lines above) and ``results.json`` (``fields_``, header and rows), atomically."""
    out_dir = Path(out_dir)
    write_csv(rows, out_dir / "results.csv", [*TABLE_COLUMNS, *(k + STD for k in SCORES), "group", "description"])
    write_text_atomic(out_dir / "results.md", markdown_table(rows, TABLE_COLUMNS, header))
    write_json(out_dir / "results.json", {**fields_, "header": list(header), "rows": list(rows)})


def read_results(out_dir: str | os.PathLike) -> dict[str, Any]:
    """What :func:`write_table` wrote to ``out_dir/results.json``: its fields, "header" and "rows"."""
    path = Path(out_dir) / "results.json"
    if not path.exists():
        raise DRBNError(f"no results in {out_dir} (missing {path.name}); run drbn.experiments.run_experiments first.")
    return read_json(path, "results table")


def usable_results(out_dir: str | os.PathLike, data: str,
                   needs: Sequence[str] = ("recomposed",)) -> tuple[dict[str, Any] | None, str | None]:
    """``(results, None)`` if ``out_dir`` holds results on ``data`` (``drbn.data.describe``'s
    line) with measured rows named ``needs``; else ``(None, why not)``."""
    if not (Path(out_dir) / "results.json").exists():
        return None, f"no results in {out_dir}"
    results = read_results(out_dir)
    if results.get("data") != data:
        return None, f"{out_dir} holds results on other data ({results.get('data')})"
    absent = [n for n in needs if n not in {r["variant"] for r in results["rows"] if r.get("images")}]
    return (None, f"{out_dir} has no measured row {', '.join(map(repr, absent))}") if absent else (results, None)


# ----------------------------------------------------------------------------- verdicts
def compare(rows: Sequence[Mapping[str, Any]] | Mapping[str, Mapping[str, Any]], a: str, b: str,
            key: str = "psnr") -> dict[str, Any]:
    """Is row ``a``'s ``key`` really different from row ``b``'s?

    The difference of the means is called real only when it exceeds the combined seed
    spread, |Δmean| > sqrt(sd_a² + sd_b²) (the std of a difference of two independent
    estimates); otherwise it is "within noise". With one seed on either side no spread is
    known and the verdict says so. Returns ``{"a", "b", "key", "delta", "spread",
    "verdict", "real"}`` (``real`` is None when it cannot be told).
    """
    by = rows if isinstance(rows, Mapping) else {r["variant"]: r for r in rows}
    for name in (a, b):
        if name not in by:
            raise DRBNError(f"no row named {name!r} to compare; choose one of {', '.join(by)}.")
    ra, rb = by[a], by[b]
    delta = float(ra[key]) - float(rb[key])
    sds = [r.get(key + STD) for r in (ra, rb)]
    if any(_missing(sd) for sd in sds):
        spread, real, verdict = None, None, "one seed: no spread known"
    else:
        spread = math.hypot(*sds)
        real = abs(delta) > spread
        verdict = "real: larger than the seed spread" if real else "within noise"
    return {"a": a, "b": b, "key": key, "delta": delta, "spread": spread, "real": real, "verdict": verdict}


# The effects notebook 04 reads off the ablation table: (what, variant a, variant b).
EFFECTS = (
    ("multi-scale loss", "RBL-v2", "RBL-v1"),
    ("feature bypass and recursive input", "DRBN T=4", "RBL-v3"),
    ("4 recursions instead of 1", "DRBN T=4", "DRBN T=1"),
    ("recomposition", "recomposed", "stage-1 output"),
    ("released w mapping vs bounded", "recomposed", "recomposed, bounded w"),
    ("adversarial term (λ_adv 2 vs 0)", "recomposed", "recomposed, λ_adv=0"),
)


def effects(rows: Sequence[Mapping[str, Any]], comparisons: Sequence[tuple[str, str, str]] = EFFECTS,
            keys: Sequence[str] = ("psnr", "ssim")) -> list[dict[str, Any]]:
    """One verdict per comparison whose two rows are in ``rows`` (see :func:`compare`),
    judged on ``keys[0]`` with the other keys' differences alongside. Negated runs are left
    out of a row's mean (:func:`table_row`); a row with no other run is not comparable and says so."""
    by = {r["variant"]: r for r in rows}
    found = []
    for what, a, b in comparisons:
        if a not in by or b not in by:
            continue
        result = {"effect": what, **compare(by, a, b, keys[0])}
        result.update({f"delta_{k}": float(by[a][k]) - float(by[b][k]) for k in keys[1:]})
        negated = [n for n in (a, b) if by[n].get("only_negated", by[n].get("negated"))]
        if negated:
            result.update(real=None, verdict=f"not comparable: every run of {', '.join(negated)} has a negated channel")
        found.append(result)
    return found
