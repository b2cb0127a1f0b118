"""Search-space parsing, search planning and the one-line errors of `vpbench tune` (no cluster)."""

from __future__ import annotations

import builtins
import importlib.util
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from vpbench.errors import ConfigError
from vpbench.plugins import Registry
from vpbench.tune import TuneRequest, load_search_space, parse_search_space, plan_search
from vpbench.cluster.connect import CONNECT_TIMEOUT_S, _check_reachable, ray_session, require_ray
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
    if scheme:
        pytest.importorskip("grpc", reason="ray:// needs Ray Client (ray[client]); its absence is tested below")
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"{scheme}127.0.0.1:{port}"
    with pytest.raises(ConfigError) as info:
        with ray_session(address):
            pass
    text = str(info.value)
    assert text.startswith(f"no Ray cluster at {address}") and "ray start --head" in text and "\n" not in text


def test_ray_client_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("ray")
    if importlib.util.find_spec("grpc") is not None:
        pytest.skip("grpc is installed here, so Ray Client is available")
    from conftest import TestPlugin
    from vpbench.cli import main

    with pytest.raises(SystemExit) as info:
        main(["run", "--model", "tinyconv", "--dataset", "glyphs", "--address", "ray://127.0.0.1:10001"], [TestPlugin()])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and "\n" not in err and "Traceback" not in err
    assert err.startswith("error: --address ray://127.0.0.1:10001 uses Ray Client, which is not installed") and "pip install 'ray[client]'" in err


def test_a_port_that_is_no_ray_cluster_fails_within_the_stated_timeout() -> None:
    """Something listens but never answers (Ray itself would wait for minutes)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        accepted: list[socket.socket] = []
        threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True).start()
        t0 = time.monotonic()
        with pytest.raises(ConfigError, match=r"something listens there but did not answer as Ray within 1 s"):
            _check_reachable(f"127.0.0.1:{port}", timeout=1.0)
        assert time.monotonic() - t0 < 30  # seconds, not Ray's minutes; loose enough for a loaded CI machine
        for conn in accepted:
            conn.close()
    assert CONNECT_TIMEOUT_S == 10.0


def test_help_states_the_connection_timeout_and_the_new_flags() -> None:
    from click.testing import CliRunner

    from vpbench.cli import run as run_cli
    from vpbench.cli import tune as tune_cli

    run_help = CliRunner().invoke(run_cli.command, ["--help"]).output
    assert "Gives up after 10 s" in run_help and "--cpus" in run_help and "--gpus" in run_help and "--max-retries" in run_help
    tune_help = CliRunner().invoke(tune_cli.command, ["--help"]).output
    for flag in ("--searcher", "--grace-period", "--reduction-factor", "--max-concurrent", "--time-budget", "hyperband"):
        assert flag in tune_help


def test_help_and_docs_say_that_rung_decisions_restart_after_resume() -> None:
    """The choice for ASHA after --resume: Ray Tune does not save the scheduler, and we say so."""
    from click.testing import CliRunner

    from vpbench.cli import tune as tune_cli

    tune_help = " ".join(CliRunner().invoke(tune_cli.command, ["--help"]).output.split())
    assert "ASHA/HyperBand rung decisions restart: the scheduler's state is not saved" in tune_help
    docs = " ".join((Path(__file__).resolve().parent.parent / "docs" / "tune.md").read_text().split())
    assert "Rung decisions restart after `--resume`." in docs and "ASHA's and HyperBand's rungs start empty" in docs


def test_run_resource_flags_need_an_address(capsys: pytest.CaptureFixture[str]) -> None:
    from conftest import TestPlugin
    from vpbench.cli import main

    with pytest.raises(SystemExit) as info:
        main(["run", "--model", "tinyconv", "--dataset", "glyphs", "--gpus", "1"], [TestPlugin()])
    assert info.value.code == 2 and "give --address too" in capsys.readouterr().err


def _tiny(tmp_path: Path, **tune: Any) -> Path:
    data: dict[str, Any] = {"fixed": {"train.max_steps": 40, "train.eval_every": 5}, "space": {"train.lr": {"loguniform": [1e-3, 1e-2]}}}
    if tune:
        data["tune"] = tune
    return _write(tmp_path, data)


def test_tune_settings_come_from_the_file_and_flags_win(registry: Registry, tmp_path: Path) -> None:
    search = _tiny(tmp_path, scheduler="hyperband", reduction_factor=3, max_concurrent=2, time_budget_s=60, searcher="optuna", seed=1)
    plan, _, _ = plan_search(TuneRequest(model="tinyconv", dataset="glyphs", search=search), registry)
    assert (plan.scheduler, plan.reduction_factor, plan.max_concurrent, plan.time_budget_s) == ("hyperband", 3.0, 2, 60.0)
    assert (plan.searcher, plan.seed, plan.max_t) == ("optuna", 1, 40)
    plan, _, _ = plan_search(
        TuneRequest(model="tinyconv", dataset="glyphs", search=search, scheduler="asha", max_concurrent=1, searcher="random"), registry
    )
    assert (plan.scheduler, plan.max_concurrent, plan.searcher) == ("asha", 1, "random")
    assert plan.grace_period == 5  # default: the first validation pass, in steps


def test_grace_period_defaults_to_the_first_of_train_validations(registry: Registry, tmp_path: Path) -> None:
    search = _write(tmp_path, {"fixed": {"train.max_steps": 40, "train.validations": 4}, "space": {"train.lr": {"choice": [1e-3, 1e-2]}}})
    plan, _, _ = plan_search(TuneRequest(model="tinyconv", dataset="glyphs", search=search), registry)
    assert plan.scheduler == "asha" and plan.grace_period == 10  # not train.eval_every (500): validations at 10, 20, 30, 40


@pytest.mark.parametrize("where", ["fixed", "set"])
def test_a_budget_under_a_step_scheduler_is_a_one_line_error_and_fifo_takes_it(registry: Registry, tmp_path: Path, where: str) -> None:
    data: dict[str, Any] = {"fixed": {"train.eval_every": 5}, "space": {"train.lr": {"choice": [1e-3, 1e-2]}}}
    sets: list[str] = []
    if where == "fixed":
        data["fixed"]["train.budget"] = {"sequences": 64}
    else:
        sets = ["train.budget={sequences: 64}"]
    search = _write(tmp_path, data)
    for scheduler in ("asha", "hyperband"):
        with pytest.raises(ConfigError, match=rf"train.budget with the {scheduler} scheduler, .* set train.max_steps instead, or tune.scheduler: fifo") as info:
            plan_search(TuneRequest(model="tinyconv", dataset="glyphs", search=search, scheduler=scheduler, sets=sets), registry)
        assert "\n" not in str(info.value)
    plan, _, _ = plan_search(TuneRequest(model="tinyconv", dataset="glyphs", search=search, scheduler="fifo", sets=sets), registry)
    assert plan.scheduler == "fifo"


def test_schedulers_count_time_in_training_steps(registry: Registry, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from ray.tune.schedulers import ASHAScheduler, HyperBandScheduler

    from vpbench.tune.search import _scheduler

    plan, _, _ = plan_search(TuneRequest(model="tinyconv", dataset="glyphs", search=_tiny(tmp_path), grace_period=10), registry)
    asha = _scheduler(plan)
    assert isinstance(asha, ASHAScheduler) and asha._time_attr == "step" and asha._max_t == 40
    assert min(milestone for milestone, _ in asha._brackets[0]._rungs) == 10  # the first rung, in steps
    plan, _, _ = plan_search(TuneRequest(model="tinyconv", dataset="glyphs", search=_tiny(tmp_path), scheduler="hyperband"), registry)
    hyper = _scheduler(plan)
    assert isinstance(hyper, HyperBandScheduler) and hyper._time_attr == "step" and hyper._max_t_attr == 40


@pytest.mark.parametrize(
    ("tune", "flags", "message"),
    [
        ({"schedular": "asha"}, {}, r"unknown config key 'tune.schedular'; valid keys here: scheduler, searcher"),
        ({"scheduler": "median"}, {}, r"bad value for config key 'tune.scheduler'"),
        ({"grace_period": 0}, {}, r"bad value for config key 'tune.grace_period'"),
        ({"reduction_factor": 1}, {}, r"bad value for config key 'tune.reduction_factor'"),
        ({"scheduler": "fifo", "grace_period": 10}, {}, r"grace_period applies to the asha scheduler only, not fifo"),
        ({}, {"max_concurrent": -1}, r"bad value for config key 'tune.max_concurrent'"),
        ({}, {"time_budget_s": 0.0}, r"bad value for config key 'tune.time_budget_s'"),
    ],
)
def test_bad_tune_settings_are_one_line_errors(registry: Registry, tmp_path: Path, tune: dict[str, Any], flags: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        plan_search(TuneRequest(model="tinyconv", dataset="glyphs", search=_tiny(tmp_path, **tune), **flags), registry)
    assert "\n" not in str(info.value)


def test_grid_with_a_model_based_searcher_is_an_error(registry: Registry, tmp_path: Path) -> None:
    search = _write(tmp_path, {"space": {"train.lr": {"loguniform": [1e-3, 1e-2]}, "seed": {"grid": [0, 1]}}, "tune": {"searcher": "optuna"}})
    with pytest.raises(ConfigError, match=r"key 'seed': grid is not supported by the optuna searcher .* write \{choice: \[...\]\} instead, or use --searcher random"):
        plan_search(TuneRequest(model="tinyconv", dataset="glyphs", search=search), registry)


def test_missing_optuna_names_the_install_command(registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "optuna" else real(name, *a))
    with pytest.raises(ConfigError, match=r"the optuna searcher needs optuna, which is not installed; install it with: pip install 'vpbench\[tune\]'"):
        plan_search(TuneRequest(model="tinyconv", dataset="glyphs", search=_tiny(tmp_path), searcher="optuna"), registry)


def test_optuna_searcher_maps_the_space_through_ray_tune() -> None:
    pytest.importorskip("optuna")
    pytest.importorskip("ray")
    from ray.tune.search.optuna import OptunaSearch

    from vpbench.tune.search import Plan, _searcher

    space = parse_search_space(_space(**{"train.lr": {"loguniform": [1e-4, 1e-2]}, "model.hidden": {"choice": [4, 8]}}))
    plan = Plan(model="tinyconv", dataset="glyphs", base={}, search="s", keys=space.keys, metric="mse", mode="min", scheduler="fifo",
                num_samples=2, max_t=10, gpus_per_trial=0, cpus_per_trial=1, max_failures=0, data_root=None, searcher="optuna", seed=0)
    searcher = _searcher(plan)
    assert isinstance(searcher, OptunaSearch)
    assert searcher.set_search_properties("val_mse", "min", space.to_ray())
    suggested = searcher.suggest("t1")
    assert 1e-4 <= suggested["train.lr"] <= 1e-2 and suggested["model.hidden"] in (4, 8)
