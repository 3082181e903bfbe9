"""examples/kubernetes: the manifests hang together, name real CLI options, and the flagd
config really rolls ``live`` out to about 10% of requests through dualwrite's resolver."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import pytest
import yaml
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext

from dualwrite.config import load_specs
from dualwrite.db import Database
from dualwrite.flags import StageResolver
from dualwrite.migrator import Migrator
from dualwrite.stages import Stage
from tests.helpers import record_backfill_and_verify, users_table

HERE = Path(__file__).resolve().parents[2] / "examples" / "kubernetes"


def manifests() -> list[dict[str, Any]]:
    kust = yaml.safe_load((HERE / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for res in kust["resources"]:
        docs.extend(d for d in yaml.safe_load_all((HERE / res).read_text()) if d)
    return docs


def test_kustomization_references_existing_files() -> None:
    kust = yaml.safe_load((HERE / "kustomization.yaml").read_text())
    files = [*kust["resources"]] + [f for g in kust["configMapGenerator"] for f in g["files"]]
    for name in files:
        assert (HERE / name).is_file(), name
    kinds = collections.Counter(d["kind"] for d in manifests())
    assert kinds == {"Namespace": 1, "Deployment": 1, "Service": 1, "Job": 1}


@pytest.fixture
def flagd_client(request: Any) -> Any:
    domain = f"flagd-{request.node.name}"
    provider = FlagdProvider(resolver_type=ResolverType.FILE,
                             offline_flag_source_path=str(HERE / "flags.json"))
    api.set_provider_and_wait(provider, domain)
    yield api.get_client(domain)
    provider.shutdown()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_flagd_config_rolls_live_out_to_ten_percent(db: Database, flagd_client: Any) -> None:
    (spec,) = load_specs([str(HERE / "dualwrite.toml")])
    users_table(db, 10, with_new=True)
    m = Migrator(db, [spec])
    m.init()
    m.advance(spec.key, Stage.SHADOW)
    resolver = StageResolver(db, client=flagd_client, ttl=0)

    def served() -> collections.Counter[Stage]:
        return collections.Counter(
            resolver.stage(spec.key, EvaluationContext(targeting_key=f"user-{i}"))
            for i in range(2000))

    # Ceiling shadow: the flag's 10% "live" is capped, every request reads shadow.
    assert served() == {Stage.SHADOW: 2000}
    record_backfill_and_verify(db, spec.key, spec.spec_hash())
    m.advance(spec.key, Stage.LIVE)
    counts = served()
    assert set(counts) == {Stage.SHADOW, Stage.LIVE}
    assert 0.05 < counts[Stage.LIVE] / 2000 < 0.15, counts
    # The split is sticky per targeting key.
    again = [resolver.stage(spec.key, EvaluationContext(targeting_key=f"user-{i}"))
             for i in range(50)]
    assert again == [resolver.stage(spec.key, EvaluationContext(targeting_key=f"user-{i}"))
                     for i in range(50)]
