"""The README's answer section is what runner.report.answer writes from docs/evidence's CSVs, and it moves with them."""

import csv
import shutil

import pytest

from runner.report.answer import BEGIN, END, Evidence, answer_section, current_section, replace_section
from tests.support import ROOT

EVIDENCE = ROOT / "docs" / "evidence"


def test_the_readme_answer_is_what_the_evidence_csvs_give():
    readme = (ROOT / "README.md").read_text()
    assert readme.count(BEGIN) == readme.count(END) == 1
    assert readme.index(BEGIN) < readme.index(END)
    written = current_section(readme)
    assert written == answer_section(Evidence.read(EVIDENCE, "docs/evidence")), (
        "README.md's answer differs from docs/evidence/*.csv: run python scripts/readme_answer.py"
    )
    # the answer is on the first screen: its questions and its table within the README's first 60 lines
    first_screen = "\n".join(readme.splitlines()[:60])
    assert "**REPLACE" in first_screen and "**REMOVE" in first_screen and "| `baseline` |" in first_screen
    assert len(readme.splitlines()) <= 300


def _rows(path):
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


def test_a_changed_cell_changes_the_answer(tmp_path):
    """The section reads its numbers from the CSV: a different FID ratio and verdict for one arm show up in it."""
    for name in ("summary.csv", "summary_runs.csv"):
        shutil.copy(EVIDENCE / name, tmp_path / name)
    before = answer_section(Evidence.read(tmp_path, "x"))
    fields, rows = _rows(tmp_path / "summary.csv")
    arm = next(row for row in rows if row["question"] == "replace")
    arm.update(fid_ratio="0.5", fid_ratio_lo="0.25", fid_ratio_hi="0.75", fid_verdict="better", fid_p_holm="0.0123")
    arm["auroc_interpolation_marginal_verdict"] = "no difference detected"
    with (tmp_path / "summary.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    after = answer_section(Evidence.read(tmp_path, "x"))
    assert after != before
    assert f"`{arm['experiment']}` x0.5 [0.25, 0.75] (Holm p 0.012)" in after
    assert f"`{arm['experiment']}` is better than baseline" in after


def test_replace_section_keeps_everything_outside_the_markers():
    readme = f"# title\nintro\n{BEGIN}\nold\n{END}\nrest\n"
    assert replace_section(readme, "new") == f"# title\nintro\n{BEGIN}\nnew\n{END}\nrest\n"
    with pytest.raises(ValueError, match="no answer markers"):
        replace_section("# no markers\n", "new")


@pytest.mark.parametrize(
    ("verdict", "p_better", "says"),
    [
        ("worse", "0.05", "So the latent guidance helped FID (median FID 120 against 80)."),
        ("better", "0.95", "So the latent guidance hurt FID (median FID 120 against 80)."),
        ("no difference detected", "0.74", "showed no benefit on FID here; if anything, the EBM alone sampled better"),
        ("no difference detected", "0.4", "showed no benefit on FID here; no lean (median FID 120 against 80"),
    ],
)
def test_the_control_says_what_it_means_for_the_latent_guidance(verdict, p_better, says):
    from runner.report.answer import _guidance

    arm = {"fid_median": "120", "fid_verdict": verdict, "fid_p_better": p_better}
    assert says in _guidance(arm, {"fid_median": "80"})
