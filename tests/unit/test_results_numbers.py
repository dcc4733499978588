"""Every number in docs/RESULTS.md (its tables, and its prose unless derived or listed) is a value of the CSVs it was
written from (docs/previous/ for the
previous profile's evidence, docs/grid/ for the beta grid), at the precision the page shows it."""

import csv
import re

from tests.support import ROOT

NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?![\w.])")
SOURCES = ["docs/previous/summary.csv", "docs/previous/summary_runs.csv", "docs/grid/summary.csv"]
SOURCES += ["docs/grid/summary_grid.csv", "docs/grid/summary_runs.csv"]
SMALL_COUNT = 10  # seed counts and tallies ("2 / 2", "1 of 3") are counted on the page, not stored


def csv_values() -> list[float]:
    values = []
    for name in SOURCES:
        with (ROOT / name).open(newline="") as handle:
            for row in csv.reader(handle):
                for cell in row:
                    values += [float(found) for found in NUMBER.findall(cell)]
    return values


def table_numbers(text: str) -> list[str]:
    """The numbers of the tables' body rows (a header is the row above a |---| line)."""
    lines = text.splitlines()
    separator = [line.startswith("|") and set(line) <= set("|-: ") for line in lines]
    body = [
        line
        for index, line in enumerate(lines)
        if line.startswith("|") and not separator[index] and not (index + 1 < len(lines) and separator[index + 1])
    ]
    return [number for row in body for number in NUMBER.findall(row)]


def shown(value: float, written: str) -> bool:
    """Whether `value` rounds to `written` at the decimals `written` shows."""
    decimals = len(written.partition(".")[2])
    return abs(round(value, decimals) - float(written)) < 10 ** -(decimals + 6) or (
        decimals == 0 and abs(value - float(written)) < 0.5 + 1e-9
    )


def test_every_number_in_the_results_tables_is_a_csv_value():
    values = csv_values()
    text = (ROOT / "docs" / "RESULTS.md").read_text()
    numbers = table_numbers(text)
    assert len(numbers) > 100
    unexplained = [
        written
        for written in numbers
        if not (float(written).is_integer() and abs(float(written)) <= SMALL_COUNT)
        and not any(shown(value, written) for value in values)
    ]
    assert unexplained == []


def test_a_stale_number_is_caught():
    """The along-beta table once said 876 where the CSV gives 875.479: the check refuses it."""
    values = csv_values()
    assert any(shown(value, "875.5") for value in values)
    assert not any(shown(value, "876.0") for value in values)


def test_encoders_md_quotes_the_evidence_as_its_csv_gives_it():
    """docs/ENCODERS.md's section on BYOL's and MoCo's probe on z: the ten seeds at the previous projection sizes
    (docs/evidence/latent_before_runs.csv) and at the profile's (docs/evidence/summary_runs.csv), as the CSVs give
    them: ranges, medians, the seeds at 0.90 or more, the largest mean cosine."""

    def runs(name: str) -> list[dict[str, str]]:
        with (ROOT / "docs" / "evidence" / name).open(newline="") as handle:
            return list(csv.DictReader(handle))

    def median(values: list[float]) -> float:
        values, middle = sorted(values), len(values) // 2
        return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2

    def stats(rows: list[dict[str, str]], arm: str) -> tuple[str, str, int, str]:
        probes = [float(r["probe_z"]) for r in rows if r["experiment"] == arm]
        cosines = [float(r["mean_cos_z"]) for r in rows if r["experiment"] == arm]
        assert len(probes) == 10
        spread = f"{min(probes):.3f}-{max(probes):.3f}"
        return spread, f"{median(probes):.3f}", sum(p >= 0.9 for p in probes), f"{max(cosines):.2f}"

    before, now = runs("latent_before_runs.csv"), runs("summary_runs.csv")
    b, m = stats(before, "byol"), stats(before, "moco")
    b2, m2 = stats(now, "byol"), stats(now, "moco")
    text = " ".join((ROOT / "docs" / "ENCODERS.md").read_text().split())
    assert (
        f"read {b[0]} for BYOL (median {b[1]}; {b[2]} of 10 at 0.90 or more) and {m[0]} for MoCo ({m[2]} of 10)" in text
    )
    assert f"read {b2[0]} for BYOL (median {b2[1]}; mean cosine of z at most {b2[3]})" in text
    assert f"and {m2[0]} for MoCo (median {m2[1]}; mean cosine at most {m2[3]})" in text
    assert (
        f"| the EMA encoder's, as every run records it | {b[0]}, {b[1]}, {b[2]} of 10 | {m[0]}, {m[1]}, {m[2]} of 10 |"
        in text
    )


def test_results_md_quotes_todays_statistics_on_the_previous_runs_as_they_recompute():
    """RESULTS.md's bullets say what today's rank tests make of the previous profile's runs (read back from
    docs/previous/summary_runs.csv, as scripts/redraw_figures.py draws them): byol's and mae's joint-AUROC drops."""
    from runner.config import ExperimentsFile
    from runner.report.runs_csv import read_runs
    from runner.report.stats import MetricKey, group_runs, metric_keys
    from runner.report.verdicts import compare_groups, parse_effect

    experiments = ExperimentsFile(ROOT / "experiments.toml")
    runs = read_runs(ROOT / "docs" / "previous" / "summary_runs.csv")
    groups = group_runs(runs, list(experiments.experiments))
    comparisons = compare_groups(groups, metric_keys(runs), parse_effect(""), experiments.questions())
    joint = MetricKey("interpolation", "joint")
    found = {c.experiment: c for c in comparisons if c.key == joint}
    text = " ".join((ROOT / "docs" / "RESULTS.md").read_text().split())
    for arm in ("byol", "mae"):
        assert found[arm].verdict == "worse" and f"{found[arm].p_holm:.3f}" == "0.024"
    assert text.count("Holm p 0.024") == 2 and "worse, Holm p 0.024)" in text


def _previous_runs() -> list[dict[str, str]]:
    with (ROOT / "docs" / "previous" / "summary_runs.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def derived_numbers() -> dict[str, float]:
    """RESULTS.md's prose numbers that are not a CSV cell but are computed from the CSVs, as the page writes them."""
    runs = _previous_runs()

    def values(arm: str, column: str) -> list[float]:
        return [float(r[column]) for r in runs if r["experiment"] == arm and r[column]]

    def mean(xs: list[float]) -> float:
        return sum(xs) / len(xs)

    hours = [float(r["wall_h"]) for r in runs]
    moco = sorted(values("moco", "fid"))
    with (ROOT / "docs" / "previous" / "summary.csv").open(newline="") as handle:
        byol_mde = next(float(r["fid_mde"]) for r in csv.DictReader(handle) if r["experiment"] == "byol")
    with (ROOT / "docs" / "grid" / "summary_grid.csv").open(newline="") as handle:
        fid = next(r for r in csv.DictReader(handle) if r["metric"] == "fid")
    joint = "auroc_interpolation_joint"
    return {
        "30": len(runs),  # the runs, and the grid's: 30 as well
        "5.6": sum(hours),
        "6.2": 60 * min(hours),
        "14.2": 60 * max(hours),
        "0.137": mean(values("baseline", joint)) - mean(values("byol", joint)),
        "35": 100 * byol_mde / mean(values("baseline", "fid")),
        "3.6": moco[-1] / moco[len(moco) // 2],
        "24": 30 - 6,  # the grid's runs that are not the evidence sweep's seeds 0-2 of its two arms
        "365": (float(fid["interaction_ci_high"]) - float(fid["interaction_ci_low"])) / 2,
    }


# numbers of the page's prose that are no CSV value, with where each comes from
NOT_FROM_THE_CSVS = {
    "29": "an issue's number",
    "95": "95% intervals",
    "12": "the simulated power of Welch's test at Holm's first step (12-22%), described beside it",
    "500": "7,500-8,900: ||u|| at the end of the no_norm_split runs, STABILITY.md's measurement",
    "900": "7,500-8,900, as above",
    "68.3": "STABILITY.md's ten-seed table of baseline and plain_ebm (seeds 5-9 are not in docs/previous)",
    "88.5": "the same table",
    "0.82": "P(plain lower) from the same table's twenty FIDs",
    "1.5": "the weak-seed rule (1.5 x the arm's median)",
}


def unexplained_prose_numbers(text: str) -> list[str]:
    """The prose numbers of a page that are no CSV value, no derived number and no listed exception."""
    prose = [line for line in text.splitlines() if not line.startswith("|")]
    derived, values = derived_numbers(), csv_values()
    return [
        written
        for line in prose
        for written in NUMBER.findall(line)
        if not (float(written).is_integer() and abs(float(written)) <= SMALL_COUNT)
        and written not in derived
        and written not in NOT_FROM_THE_CSVS
        and not any(shown(value, written) for value in values)
    ]


def test_every_number_in_the_results_prose_is_a_csv_value_or_derived_from_one():
    for written, value in derived_numbers().items():
        assert shown(value, written), (written, value)
    assert unexplained_prose_numbers((ROOT / "docs" / "RESULTS.md").read_text()) == []


def test_a_stale_prose_number_is_caught():
    text = (ROOT / "docs" / "RESULTS.md").read_text()
    assert "5.6 CPU hours" in text and "(6.2-14.2 min each)" in text
    stale = text.replace("5.6 CPU hours", "5.9 CPU hours").replace("(6.2-14.2 min each)", "(6.2-14.8 min each)")
    assert unexplained_prose_numbers(stale) == ["5.9", "14.8"]
