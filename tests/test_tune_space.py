"""Search-space parsing, search planning and the one-line errors of `vpbench tune` (no cluster)."""

from __future__ import annotations

import builtins
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from vpbench.errors import ConfigError
from vpbench.plugins import Registry
from vpbench.tune import TuneRequest, load_search_space, parse_search_space, plan_search
from vpbench.tune.cluster import ray_session, require_ray
from vpbench.tune.space import set_dotted

REPO = Path(__file__).resolve().parent.parent


def _space(**space: Any) -> dict[str, Any]:
    return {"space": space}


def test_parses_all_four_distributions_in_file_order() -> None:
    space = parse_search_space(
        {
            "fixed": {"train.max_steps": 10},
            "space": {
                "train.lr": {"loguniform": [1e-4, 1e-2]},
                "model.hidden": {"choice": [4, 8]},
                "train.grad_clip": {"uniform": [0.5, 2]},
                "seed": {"grid": [0, 1, 2]},
            },
        }
    )
    assert space.keys == ["train.lr", "model.hidden", "train.grad_clip", "seed"]
    assert [d.kind for d in space.domains] == ["loguniform", "choice", "uniform", "grid"]
    assert space.fixed == {"train.max_steps": 10}
    assert space.grid_size() == 3


def test_to_ray_builds_tune_domains() -> None:
    pytest.importorskip("ray")
    from ray.tune.search.sample import Categorical, Float

    ray_space = parse_search_space(
        _space(**{"train.lr": {"loguniform": [1e-4, 1e-2]}, "model.hidden": {"choice": [4, 8]}, "seed": {"grid": [0, 1]}})
    ).to_ray()
    assert isinstance(ray_space["train.lr"], Float) and ray_space["train.lr"].lower == pytest.approx(1e-4)
    assert isinstance(ray_space["model.hidden"], Categorical) and ray_space["model.hidden"].categories == [4, 8]
    assert ray_space["seed"] == {"grid_search": [0, 1]}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"train.lr": {"logunif": [1, 2]}}, "key 'train.lr': unknown distribution 'logunif'; expected one of {choice:"),
        ({"train.lr": {"loguniform": [0, 1e-2]}}, "key 'train.lr': loguniform expects [low, high] with 0 < low < high"),
        ({"train.lr": {"uniform": [3, 1]}}, "key 'train.lr': uniform expects [low, high] with low < high, got [3, 1]"),
        ({"train.lr": {"uniform": [1, 2, 3]}}, "key 'train.lr': uniform expects [low, high] with low < high, got 3 values"),
        ({"train.lr": {"uniform": ["a", 2]}}, "key 'train.lr': uniform expects [low, high] with low < high, got 'a' (not a number)"),
        ({"model.hidden": {"choice": []}}, "key 'model.hidden': choice expects a non-empty list of values"),
        ({"model.hidden": {"choice": 8}}, "key 'model.hidden': choice expects a non-empty list of values, got 8"),
        ({"model.hidden": 8}, "key 'model.hidden': expected a mapping with exactly one distribution"),
        ({"lr": {"choice": [1]}}, "key 'lr': expected a dotted config key starting with one of model, dataset, train"),
    ],
)
def test_invalid_space_names_the_key_and_what_was_expected(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_search_space({"space": entry}, "s.yaml")
    text = str(info.value)
    assert text.startswith("search space s.yaml: ") and message in text
    assert "\n" not in text


def test_space_section_is_required_and_sections_are_checked() -> None:
    with pytest.raises(ConfigError, match="'space' must map at least one config key"):
        parse_search_space({"fixed": {"train.lr": 1}})
    with pytest.raises(ConfigError, match="unknown section 'spaces'"):
        parse_search_space({"spaces": {}})
    with pytest.raises(ConfigError, match="key 'train.lr': appears in both 'fixed' and 'space'"):
        parse_search_space({"fixed": {"train.lr": 1}, "space": {"train.lr": {"choice": [1]}}})


def test_set_dotted_nests_keys_and_converts_numpy_scalars() -> None:
    np = pytest.importorskip("numpy")
    out = set_dotted({"train": {"max_steps": 5}}, {"train.lr": np.float64(0.5), "model.hidden": np.int64(8), "seed": 3})
    assert out == {"train": {"max_steps": 5, "lr": 0.5}, "model": {"hidden": 8}, "seed": 3}
    assert type(out["model"]["hidden"]) is int
    yaml.safe_dump(out)  # YAML-safe


def test_shipped_search_files_parse() -> None:
    files = sorted((REPO / "configs" / "tune").glob("*.yaml"))
    assert files
    for path in files:
        assert load_search_space(path).domains


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_plan_takes_mode_from_the_metric_direction(registry: Registry, tmp_path: Path) -> None:
    search = _write(tmp_path, _space(**{"train.lr": {"loguniform": [1e-3, 1e-2]}}))
    low, _, _ = plan_search(TuneRequest(model="tinyconv", dataset="glyphs", search=search, metric="mse"), registry)
    high, _, _ = plan_search(TuneRequest(model="tinyconv", dataset="glyphs", search=search, metric="psnr"), registry)
    assert (low.metric, low.mode) == ("mse", "min")
    assert (high.metric, high.mode) == ("psnr", "max")
    assert high.base["train"]["select_metric"] == "psnr"  # the trial selects on what Tune optimises


def test_plan_rejects_space_values_the_config_refuses(registry: Registry, tmp_path: Path) -> None:
    search = _write(tmp_path, _space(**{"train.lrr": {"choice": [1e-3]}}))
    with pytest.raises(ConfigError, match=r"key 'train.lrr' = 0.001: unknown config key 'train.lrr'; valid keys here: max_steps"):
        plan_search(TuneRequest(model="tinyconv", dataset="glyphs", search=search), registry)
    search = _write(tmp_path, _space(**{"train.batch_size": {"choice": [4, 0]}}))
    with pytest.raises(ConfigError, match=r"key 'train.batch_size' = 0: bad value for config key 'train.batch_size'"):
        plan_search(TuneRequest(model="tinyconv", dataset="glyphs", search=search), registry)
    search = _write(tmp_path, _space(**{"model.hiddn": {"choice": [4]}}))
    with pytest.raises(ConfigError, match=r"key 'model.hiddn' = 4: unknown config key 'model.hiddn'; valid keys here: hidden, noise"):
        plan_search(TuneRequest(model="tinyconv", dataset="glyphs", search=search), registry)


def test_resume_needs_a_search_folder(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--resume needs --out DIR naming a search folder"):
        plan_search(TuneRequest(resume=True, out=tmp_path), registry)


def test_missing_ray_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_ray(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ray" or name.startswith("ray."):
            raise ImportError(f"No module named {name!r}", name="ray")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ConfigError, match=r"Ray Tune is not installed \(ray\); install it with: pip install 'vpbench\[tune\]'"):
        require_ray()


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_no_cluster_at_address_is_one_line_with_the_start_command(scheme: str) -> None:
    pytest.importorskip("ray")
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"{scheme}127.0.0.1:{port}"
    with pytest.raises(ConfigError) as info:
        with ray_session(address):
            pass
    text = str(info.value)
    assert text.startswith(f"no Ray cluster at {address}") and "ray start --head" in text and "\n" not in text
