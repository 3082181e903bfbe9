"""examples/kubernetes: the backfill Job names a real command with real options."""

from __future__ import annotations

import tomllib

import yaml
from click.testing import CliRunner

from dualwrite.cli import main
from dualwrite.config import load_specs
from dualwrite.flags import flag_key
from tests.examples.test_kubernetes import HERE, manifests


def test_backfill_job_is_indexed_and_its_command_parses() -> None:
    (job,) = [d for d in manifests() if d["kind"] == "Job"]
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["parallelism"] == job["spec"]["completions"] > 1
    container = job["spec"]["template"]["spec"]["containers"][0]
    command = container["command"]
    assert command[0] == "dualwrite"
    # The spec file the Job mounts is the one in the ConfigMap, and it loads.
    specs = load_specs([str(HERE / "dualwrite.toml")])
    assert [s.key for s in specs] == ["users_rename"]
    assert "users_rename" in command
    # Every option the Job passes exists: click rejects an unknown option before --help.
    result = CliRunner().invoke(main, [*command[1:], "--help"])
    assert result.exit_code == 0, result.output
    # The flag in flags.json is the one dualwrite evaluates for this migration.
    flags = yaml.safe_load((HERE / "flags.json").read_text())["flags"]
    assert flag_key(specs[0].key) in flags
    spec_toml = tomllib.loads((HERE / "dualwrite.toml").read_text())
    assert spec_toml["migration"][0]["table"] == "users"
