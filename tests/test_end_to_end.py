"""End to end as a user would run it: intent + workload in, real events out.

Cases live in ``tests/data/paraphrases.json`` (phrasings of everyday tasks, written for these tests) and,
when the steering repository's development set is beside this checkout, ``../shared/eval/dev.json``.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import ROOT, run_cli

CASE_FILES = [ROOT / "tests" / "data" / "paraphrases.json", ROOT.parent / "shared" / "eval" / "dev.json"]


def load_cases() -> list[dict]:
    cases: list[dict] = []
    for path in CASE_FILES:
        if path.exists():
            cases += json.loads(path.read_text())
    return cases


@pytest.mark.kernel
@pytest.mark.parametrize("case", load_cases(), ids=lambda c: c["id"])
def test_case(case: dict) -> None:
    r = run_cli("--yes", "--offline", "-c", case["command"], *case.get("extra_args", []), case["intent"], timeout=90)
    for rx in case.get("expect_all", []):
        assert re.search(rx, r.stdout, re.M), f"stdout lacks /{rx}/\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}"
    for rx in case.get("expect_none", []):
        assert not re.search(rx, r.stdout + r.stderr, re.M), f"output has /{rx}/\n{r.stderr[-1500:]}"
    if "expect_rc" in case:
        assert r.returncode == case["expect_rc"], r.stderr[-1500:]
    else:
        assert r.returncode in (0, 130), r.stderr[-1500:]
