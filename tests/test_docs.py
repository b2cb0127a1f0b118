"""The plugin example in docs/plugins.md and the README is real code that trains and scores."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

from vpbench.engine.run import RunRequest, execute_run
from vpbench.plugins import get_registry

ROOT = Path(__file__).resolve().parent.parent


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("doc", ["docs/plugins.md", "README.md"])
def test_documented_model_plugin_registers_and_trains(doc, tmp_path, monkeypatch):
    init, model = _python_blocks(ROOT / doc)[:2]
    name = f"doc_plugin_{doc.replace('/', '_').replace('.', '_').lower()}"
    pkg = tmp_path / "site" / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(init.replace("my_vp_model", name))
    (pkg / "model.py").write_text(model)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    module = importlib.import_module(name)
    try:
        registry = get_registry([module])
        assert "last-delta" in registry.models
        sets = ["dataset.train_length=16", "dataset.val_length=4", "dataset.test_length=4",
                "train.max_steps=4", "train.batch_size=2", "train.eval_every=2", "train.val_sequences=4",
                "eval.profile=false"]
        record, _ = execute_run(
            RunRequest(model="last-delta", dataset="glyphs", sets=sets, out=tmp_path / "run", device="cpu",
                       progress=False),
            registry, echo=lambda s: None,
        )
        assert record.train.steps_done == 4 and record.params_trainable == 1
        assert record.model.package.startswith(name)
    finally:
        for mod in [m for m in sys.modules if m.startswith(name)]:
            del sys.modules[mod]


def _files(path: Path) -> dict[str, str]:
    """Python blocks whose first line is ``# file: package/module.py``."""
    out = {}
    for block in _python_blocks(path):
        first = block.splitlines()[0]
        if first.startswith("# file: "):
            out[first[len("# file: "):].split()[0]] = block
    return out


def test_documented_dataset_and_metric_plugin_pass_the_kit_and_run(tmp_path, monkeypatch):
    from vpbench.testing import all_cases

    files = _files(ROOT / "docs" / "plugins.md")
    assert set(files) == {"my_vp_data/__init__.py", "my_vp_data/data.py", "my_vp_data/metric.py"}
    name = "doc_plugin_data"
    for rel, code in files.items():
        dest = tmp_path / "site" / rel.replace("my_vp_data", name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(code.replace("my_vp_data", name))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    module = importlib.import_module(name)
    try:
        registry = get_registry([module])
        cases = all_cases(registry, datasets=["bars"], metrics=["maxerr"])
        assert len(cases) == 5 + 2 * 4
        for case in cases:
            case.run()  # a failure or a skip fails this test
        record, _ = execute_run(
            RunRequest(model="copy-last", dataset="bars", out=tmp_path / "run", device="cpu", progress=False,
                       sets=["eval.metrics=[maxerr,mse]", "eval.profile=false", "dataset.test_length=8"]),
            registry, echo=lambda s: None,
        )
        assert record.metrics["openstl"]["maxerr"].mean == pytest.approx(1.0)  # a moving bar: some pixel is off by 1
        assert record.data_info["test_set"] == "generated with fixed seed 2"
    finally:
        for mod in [m for m in sys.modules if m.startswith(name)]:
            del sys.modules[mod]


def test_config_reference_is_generated_from_the_typed_configs():
    from vpbench.configdoc import BEGIN, END, reference_md

    text = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    committed = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert committed == reference_md().strip(), "docs/config.md is stale: python -m vpbench.configdoc docs/config.md"
    from vpbench.config import EvalConfig, TrainConfig

    for section, cls in (("train", TrainConfig), ("eval", EvalConfig)):
        for key in cls.model_fields:
            assert f"`{section}.{key}`" in committed


def test_readme_tells_cpu_only_users_how_to_install_pytorch():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "--index-url https://download.pytorch.org/whl/cpu" in readme
