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
