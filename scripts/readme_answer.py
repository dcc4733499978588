"""Write the README's answer section from docs/evidence/summary.csv and summary_runs.csv (runner.report.answer).

python scripts/readme_answer.py           # rewrite the section between the README's answer markers
python scripts/readme_answer.py --check   # exit 1 when the README's section differs from what the CSVs give
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.report.answer import Evidence, answer_section, current_section, replace_section  # noqa: E402

EVIDENCE = "docs/evidence"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on a difference")
    args = parser.parse_args()
    readme = ROOT / "README.md"
    section = answer_section(Evidence.read(ROOT / EVIDENCE, EVIDENCE))
    text = readme.read_text()
    if args.check:
        if current_section(text) != section:
            print("README.md's answer section differs from docs/evidence/*.csv: run python scripts/readme_answer.py")
            return 1
        return 0
    readme.write_text(replace_section(text, section))
    return 0


if __name__ == "__main__":
    sys.exit(main())
