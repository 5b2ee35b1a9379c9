"""benchmarks/faults.py: the campaign's tiny mode runs every single-process scenario and the
fuzzer, and each trial passes; the fuzzer's cases are malformed by construction."""

import json
import random

import pytest


@pytest.mark.slow
def test_the_tiny_campaign_runs_every_scenario_and_passes(faults_campaign, tmp_path):
    out = tmp_path / "faults.json"
    assert faults_campaign.main(["--tiny", "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    rows = {r["scenario"]: r for r in payload["scenarios"]}
    assert set(rows) == {*faults_campaign.SCENARIOS, "fuzz"}
    for name, row in rows.items():
        assert row["failures"] == 0, (name, row["failed"])
    assert rows["fuzz"]["trials"] == faults_campaign.FUZZ_CASES["tiny"]
    assert rows["bitflip"]["counts"].get("corrupt_accepted", 0) == 0
    assert rows["kill9_save"]["counts"]["corrupt_last_pt"] == 0
    assert rows["ddp_kill"]["trials"] == 0  # torchrun scenarios: tests/faults/test_fault_ddp.py


def test_fuzz_cases_are_seeded_and_cover_every_kind(faults_campaign):
    a = faults_campaign.fuzz_cases(300, random.Random(0))
    b = faults_campaign.fuzz_cases(300, random.Random(0))
    assert [(c.kind, c.overrides, c.files) for c in a] == [
        (c.kind, c.overrides, c.files) for c in b
    ]
    assert len({c.kind for c in a}) == 15


def test_a_valid_recipe_is_not_counted_as_refused(faults_campaign, tmp_path):
    """The fuzzer's judge must be able to fail: the valid base recipe exits 0, not 2."""
    campaign = faults_campaign.Campaign(tmp_path, random.Random(0), True, {})
    case = faults_campaign.FuzzCase(
        "valid", {"recipe.yaml": faults_campaign.TINY_RECIPE.encode()}, []
    )
    trial = faults_campaign.fuzz_one(campaign, case, 0, subprocess_too=False)
    assert not trial.ok and trial.counts["accepted"] == 1
