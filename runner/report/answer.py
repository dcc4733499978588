"""The README's answer section, written from a summary's CSVs (summary.csv, summary_runs.csv) and nothing else.

Every number in it is read from a CSV cell and written with runner.report.numbers, so the section can be
regenerated and compared: scripts/readme_answer.py writes it between the README's answer markers, and a test
fails when the README's text differs from what the committed CSVs give.
"""

import csv
from dataclasses import dataclass
from pathlib import Path

from runner.report.numbers import fixed, interval, number, p_value

BEGIN = "<!-- answer:begin (written by scripts/readme_answer.py from docs/evidence/*.csv; do not edit by hand) -->"
END = "<!-- answer:end -->"
PRIMARY_AUROC = "auroc_interpolation_marginal"
SECONDARY_AUROCS = ("auroc_interpolation_joint", "auroc_inverted_joint", "auroc_uniform_noise_joint")
QUESTIONS = {
    "replace": "REPLACE: does SimCLR guide CLEL better or worse than BYOL, MoCo or MAE?",
    "remove": "REMOVE: does CLEL need the norm-direction split of its latent-variable EBM?",
    "negatives": "NEGATIVES: does SimCLR need the EBM's samples as extra negatives (the REPLACE arms' confound)?",
    "control": "Control: the EBM alone, no encoder guiding it",
}


@dataclass(frozen=True)
class Evidence:
    """One summary: its rows per arm (summary.csv) and per run (summary_runs.csv), as the CSVs' strings."""

    arms: list[dict[str, str]]
    runs: list[dict[str, str]]
    folder: str  # where the CSVs and figures are, relative to the README

    @classmethod
    def read(cls, folder: Path, relative: str) -> "Evidence":
        def rows(name: str) -> list[dict[str, str]]:
            with (folder / name).open(newline="") as handle:
                return list(csv.DictReader(handle))

        return cls(rows("summary.csv"), rows("summary_runs.csv"), relative)

    def of(self, question: str) -> list[dict[str, str]]:
        return [arm for arm in self.arms if arm["question"] == question]


def _f(cell: str) -> float | None:
    return float(cell) if cell not in ("", "nan") else None


def _ratio(arm: dict[str, str]) -> str:
    return f"x{number(_f(arm['fid_ratio']))} {interval((_f(arm['fid_ratio_lo']), _f(arm['fid_ratio_hi'])))}"


def _shift(arm: dict[str, str], key: str) -> str:
    value, low, high = (_f(arm[f"{key}_shift{part}"]) for part in ("", "_lo", "_hi"))
    return f"{value:+.3f} {interval((low, high), lambda v: f'{v:+.3f}')}" if value is not None else "-"


def _holm(arm: dict[str, str], key: str) -> str:
    return f"Holm p {p_value(_f(arm[f'{key}_p_holm']))}"


def _verdict(arm: dict[str, str], key: str) -> str:
    verdict = arm[f"{key}_verdict"]
    return f"{verdict} ({_holm(arm, key)})" if verdict else "not tested"


def _judgement(arm: dict[str, str]) -> str:
    """The arm against baseline on its two primary endpoints: worse, better, mixed or not distinguishable."""
    verdicts = {arm["fid_verdict"], arm[f"{PRIMARY_AUROC}_verdict"]} - {"", "no difference detected"}
    if not verdicts:
        return "not distinguishable from baseline"
    return f"{verdicts.pop()} than baseline" if len(verdicts) == 1 else "mixed (one endpoint better, one worse)"


def _lead(arms: list[dict[str, str]]) -> str:
    """Which arms are worse, better or not distinguishable, in one sentence."""
    by_judgement: dict[str, list[str]] = {}
    for arm in arms:
        by_judgement.setdefault(_judgement(arm), []).append(f"`{arm['experiment']}`")
    parts = [f"{' and '.join(names)} {'is' if len(names) == 1 else 'are'} {j}" for j, names in by_judgement.items()]
    return "; ".join(parts) + "."


def _numbers(arms: list[dict[str, str]]) -> str:
    """The primary endpoints' shifts with their intervals and Holm p, and the FID ratio the test could detect."""
    fid = ", ".join(f"`{a['experiment']}` {_ratio(a)} ({_holm(a, 'fid')})" for a in arms)
    auroc = ", ".join(f"`{a['experiment']}` {_shift(a, PRIMARY_AUROC)} ({_holm(a, PRIMARY_AUROC)})" for a in arms)
    detectable = sorted(float(a["fid_mde_ratio"]) for a in arms if a["fid_mde_ratio"])
    text = f" FID / baseline: {fid}. Interpolation AUROC - baseline: {auroc}."
    if detectable:
        span = (
            number(detectable[0])
            if detectable[0] == detectable[-1]
            else f"{number(detectable[0])}-{number(detectable[-1])}"
        )
        text += (
            f" With these seeds the test detects an FID ratio of about x{span} (80% power); smaller effects are open."
        )
    return text


def _secondary(arms: list[dict[str, str]]) -> str:
    """The secondary endpoints with a detected difference, or '' when none has one."""
    found = [
        f"`{arm['experiment']}` {key.removeprefix('auroc_').replace('_', ' ')} AUROC {_shift(arm, key)} "
        f"({arm[f'{key}_verdict']}, {_holm(arm, key)})"
        for arm in arms
        for key in SECONDARY_AUROCS
        if arm.get(f"{key}_verdict") in ("better", "worse")
    ]
    return f" Secondary endpoints that differ: {'; '.join(found)}." if found else ""


def _guidance(arm: dict[str, str], baseline: dict[str, str]) -> str:
    """What the control says of the latent guidance, on FID: helped, hurt, or not shown (and which way it leans)."""
    medians = f"median FID {number(_f(arm['fid_median']), 4)} against {number(_f(baseline['fid_median']), 4)}"
    chance = f"P(arm's FID lower) {fixed(_f(arm['fid_p_better']), 2)}"
    if arm["fid_verdict"] == "worse":
        return f" So the latent guidance helped FID ({medians})."
    if arm["fid_verdict"] == "better":
        return f" So the latent guidance hurt FID ({medians})."
    lean = "if anything, the EBM alone sampled better" if (_f(arm["fid_p_better"]) or 0) > 0.5 else "no lean"
    return f" So the latent guidance showed no benefit on FID here; {lean} ({medians}, {chance})."


def _table(evidence: Evidence) -> list[str]:
    lines = [
        "| arm | seeds | failed runs, rate [95% CI] | encoder probe z (untrained) | FID median [95% CI] "
        "| FID / baseline [95% CI] | P(arm's FID lower) | verdict on FID |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for arm in evidence.arms:
        probe = "-"
        if arm["probe_z_median"]:
            probe = f"{fixed(_f(arm['probe_z_median']))} ({fixed(_f(arm['untrained_probe_z_median']))})"
        median = f"{number(_f(arm['fid_median']), 4)} "
        median += interval((_f(arm["fid_median_lo"]), _f(arm["fid_median_hi"])), lambda v: number(v, 4))
        compared = bool(arm["fid_verdict"])
        failed = f"{arm['failed_n']}/{arm['judged_n']} "
        failed += interval((_f(arm["failure_rate_lo"]), _f(arm["failure_rate_hi"])), lambda v: fixed(v, 2))
        lines.append(
            f"| `{arm['experiment']}` | {arm['n_seeds']} | {failed} | {probe} | {median} "
            f"| {_ratio(arm) if compared else '-'} | {fixed(_f(arm['fid_p_better']), 2) if compared else '-'} "
            f"| {_verdict(arm, 'fid') if compared else '(reference)'} |"
        )
    return lines


def _encoders(evidence: Evidence) -> str:
    encoder_arms = [arm for arm in evidence.arms if arm["probe_z_median"]]
    runs = [run for run in evidence.runs if run["probe_z"]]
    collapsed = sum(run["encoder_collapsed"] == "true" for run in runs)
    above = sum(float(run["probe_z"]) > float(run["untrained_probe_z"]) for run in runs)
    lowest = min(encoder_arms, key=lambda arm: float(arm["probe_z_median"]))
    return (
        f"Did the encoders learn? A linear probe (a logistic regression predicting the digit from the encoder's "
        f"outputs) tells: in {above} of the {len(runs)} runs with an encoder its latent z beats its untrained "
        f"start; {collapsed} encoders collapsed. Lowest probe on z: "
        f"`{lowest['experiment']}` "
        f"(median {fixed(_f(lowest['probe_z_median']))}, untrained {fixed(_f(lowest['untrained_probe_z_median']))}; "
        "[docs/ENCODERS.md](docs/ENCODERS.md))."
    )


def _scope(evidence: Evidence) -> str:
    profiles = sorted({arm["profile"] for arm in evidence.arms})
    devices = sorted({arm["device"] for arm in evidence.arms})
    hours = sum(_f(arm["wall_h_total"]) or 0.0 for arm in evidence.arms)
    short = [
        f"`{a['experiment']}` {a['n_seeds']}" for a in evidence.arms if a["n_seeds"] != evidence.arms[0]["n_seeds"]
    ]
    minutes = sorted(60 * float(run["wall_h"]) for run in evidence.runs if run["wall_h"])
    text = (
        f"Resting on: profile {', '.join(profiles)} (scikit-learn's 8x8 digits upsampled to 16x16), "
        f"{len(evidence.runs)} runs of {number(minutes[0], 2)}-{number(minutes[-1], 2)} min each, "
        f"{number(hours, 2)} hours of run time in all, on {'; '.join(devices)}, two runs at a time on two cores."
    )
    if short:
        text += f" Seeds differ per arm: {', '.join(short)}."
    seeds = ",".join(str(seed) for seed in sorted({int(run["seed"]) for run in evidence.runs}))
    text += (
        f" Reproduce: `python -m runner sweep --profile {','.join(profiles)} --seeds {seeds} --parallel 2 --store "
        f"runs-evidence`, then `python -m runner summarize --store runs-evidence --out {evidence.folder}/summary.csv "
        f"--report {evidence.folder}/report.md`."
    )
    if "paper" not in profiles:
        text += (
            " What it cannot say: no paper-profile (CIFAR-10, GPU) run exists yet, so nothing here predicts the "
            "paper's numbers."
        )
    return text


def answer_section(evidence: Evidence) -> str:
    """The Markdown between the README's answer markers (markers excluded)."""
    baseline = next(arm for arm in evidence.arms if not arm["question"])
    lines = [
        f"## The answer so far ({baseline['profile']} profile, {baseline['n_seeds']} seeds per arm)",
        "",
        f"Each arm changes one thing in CLEL's `{baseline['experiment']}` and is compared with it over seeds: FID "
        "(lower is better) and the AUROC of telling interpolated digits from real ones (higher is better) are the "
        "primary endpoints; an exact rank test, Holm-corrected within each question (Holm's correction keeps the "
        "chance of any false verdict among a question's arms at most 5%; [docs/STATISTICS.md](docs/STATISTICS.md)). "
        "FID is computed on the features of digits-cnn, a small digits classifier trained and shipped here so that a "
        "run needs no download (so not comparable with Inception FIDs). Intervals are 95% and unadjusted, so one can "
        "exclude zero where the verdict, adjusted, finds no difference; a verdict needs the Holm-adjusted p below "
        "0.05. The marginal AUROC ranks by the energy "
        "-E(x), the joint one by -E(x, z(x)) with the image's own latent; P(arm's FID lower) is the chance that a "
        "seed of the arm beats a seed of baseline. A run failed when its samples are not digits (judged on them by "
        "the digits network); an encoder collapsed when its probe on z is no better than its untrained start's. "
        "Every term: [Glossary](#glossary).",
        "",
    ]
    for question, title in QUESTIONS.items():
        arms = evidence.of(question)
        if not arms:
            continue
        secondary = _secondary(arms)
        line = f"- **{title}** {_lead(arms)}{_numbers(arms)}{secondary}"
        if question == "control":
            line += "".join(_guidance(arm, baseline) for arm in arms)
        if question == "remove" and secondary:
            line += (
                " Without the split the joint score is dominated by the norm of u, so its joint-AUROC drop is "
                "largely by construction; the marginal score is the fair comparison."
            )
        lines.append(line)
    lines += ["", _encoders(evidence), "", *_table(evidence), "", _scope(evidence), ""]
    folder = evidence.folder
    lines += [
        f'<img src="{folder}/fid_by_seed.png" height="280" alt="FID per seed and arm, log scale">',
        "",
        f'<img src="{folder}/samples_rows.png" width="100%" alt="samples: a typical and the worst seed per arm">',
        "",
        "FID per seed (above; lower is better) and each arm's samples at its typical and its worst seed. Everything "
        f"in this section is written from [{folder}/summary.csv]({folder}/summary.csv) and "
        f"[summary_runs.csv]({folder}/summary_runs.csv) by `python scripts/readme_answer.py`; the full report: "
        f"[{folder}/report.md]({folder}/report.md).",
    ]
    return "\n".join(lines)


def replace_section(readme: str, section: str) -> str:
    """The README with the text between its markers replaced by `section`."""
    head, found, rest = readme.partition(BEGIN)
    _, closed, tail = rest.partition(END)
    if not found or not closed:
        raise ValueError("the README has no answer markers")
    return f"{head}{BEGIN}\n{section}\n{END}{tail}"


def current_section(readme: str) -> str:
    """The text between the README's answer markers."""
    return readme.partition(BEGIN)[2].partition(END)[0].strip("\n")
