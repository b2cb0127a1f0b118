"""FVD (plugins/vpbench_fvd): the Fréchet distance, the pipeline with a stand-in I3D, the hash gate."""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

from fvd_standin import FEATURES, build_standin, save_standin
from vpbench.components import build_dataset
from vpbench.errors import CheckpointError, ConfigError, DataError
from vpbench.interfaces import SetMetric
from vpbench_fvd.frechet import frechet_distance, gaussian_stats, trace_sqrt_product
from vpbench_fvd.metric import FVD, SIDE, clips_for_i3d
from vpbench_fvd.weights import I3D_SHA256, I3D_SOURCE, WEIGHTS_ENV, accepted_hashes, accepting

# -- the Fréchet distance against closed forms -------------------------------------------


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form() -> None:
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    a, b = np.array([4.0, 1.0, 0.25]), np.array([1.0, 9.0, 0.25])
    expected = 1.0 + 0.0 + 6.25 + ((2.0 - 1.0) ** 2 + (1.0 - 3.0) ** 2 + 0.0)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_of_non_commuting_2d_gaussians_is_the_closed_form() -> None:
    # for 2x2 PSD M: tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)); M ~ S1 S2 has tr(S1 S2), det S1 det S2
    s1 = np.array([[2.0, 0.8], [0.8, 1.0]])
    s2 = np.array([[0.5, -0.3], [-0.3, 3.0]])
    assert not np.allclose(s1 @ s2, s2 @ s1)
    mu1, mu2 = np.array([0.3, -1.0]), np.array([-0.2, 0.5])
    tr_sqrt = np.sqrt(np.trace(s1 @ s2) + 2 * np.sqrt(np.linalg.det(s1) * np.linalg.det(s2)))
    expected = 0.25 + 2.25 + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-12)
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(expected, rel=1e-12)  # symmetric


def test_frechet_distance_of_scaled_covariances_in_64_dimensions() -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(size=(64, 64))
    s1 = a @ a.T / 64
    mu1, mu2 = rng.normal(size=64), rng.normal(size=64)
    c = 1.7  # S2 = c^2 S1: d^2 = |mu1 - mu2|^2 + (1 - c)^2 tr S1
    expected = float(np.sum((mu1 - mu2) ** 2) + (1 - c) ** 2 * np.trace(s1))
    assert frechet_distance(mu1, s1, mu2, c**2 * s1) == pytest.approx(expected, rel=1e-10)


def test_singular_covariances_are_exact_not_errors() -> None:
    # rank-deficient: S1 = diag(a, 0, 0), S2 = diag(b, c, 0) -> (sqrt a - sqrt b)^2 + c
    s1, s2 = np.diag([4.0, 0.0, 0.0]), np.diag([1.0, 2.5, 0.0])
    mu = np.zeros(3)
    assert frechet_distance(mu, s1, mu, s2) == pytest.approx(1.0 + 2.5, rel=1e-12)
    assert frechet_distance(mu, np.zeros((3, 3)), mu, np.zeros((3, 3))) == 0.0
    # fewer samples than dimensions (as on a small test set with 400 I3D features): rank <= n - 1
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 400))
    mu_x, cov_x = gaussian_stats(x)
    assert np.linalg.matrix_rank(cov_x) < 30
    assert 0.0 <= frechet_distance(mu_x, cov_x, mu_x, cov_x) < 1e-9 * np.trace(cov_x)
    y = rng.normal(size=(30, 400)) * 1.5 + 0.2
    mu_y, cov_y = gaussian_stats(y)
    value = frechet_distance(mu_x, cov_x, mu_y, cov_y)
    assert np.isfinite(value) and value > 0
    # an independent computation (Schur square root of the product) agrees where it is well-posed
    z = rng.normal(size=(2000, 20))
    w = rng.normal(size=(2000, 20)) @ rng.normal(size=(20, 20)) / 4
    (m1, c1), (m2, c2) = gaussian_stats(z), gaussian_stats(w)
    root = scipy.linalg.sqrtm(c1 @ c2)
    schur = float(np.sum((m1 - m2) ** 2) + np.trace(c1 + c2 - 2 * np.real(root)))
    assert frechet_distance(m1, c1, m2, c2) == pytest.approx(schur, rel=1e-8)
    assert trace_sqrt_product(c1, c2) == pytest.approx(float(np.trace(np.real(root))), rel=1e-8)


def test_sample_statistics_approach_the_population_distance() -> None:
    rng = np.random.default_rng(1)
    s1 = np.array([[1.0, 0.5], [0.5, 2.0]])
    s2 = np.array([[3.0, -0.4], [-0.4, 0.5]])
    mu1, mu2 = np.array([0.0, 0.0]), np.array([1.0, -1.0])
    x = rng.multivariate_normal(mu1, s1, size=200_000)
    y = rng.multivariate_normal(mu2, s2, size=200_000)
    assert frechet_distance(*gaussian_stats(x), *gaussian_stats(y)) == pytest.approx(
        frechet_distance(mu1, s1, mu2, s2), rel=0.02
    )


def test_non_finite_statistics_give_nan() -> None:
    mu, s = np.zeros(2), np.eye(2)
    assert np.isnan(frechet_distance(np.array([np.nan, 0.0]), s, mu, s))


# -- the preprocessing ---------------------------------------------------------------


def test_clips_are_quantised_grey_replicated_resized_and_mapped_to_minus_one_one() -> None:
    frames = torch.full((2, 5, 1, 64, 48), 0.3)
    frames[1] = 1.7  # an unclipped prediction
    x = clips_for_i3d(frames)
    assert x.shape == (2, 3, 5, SIDE, SIDE) and x.dtype == torch.float32
    assert torch.allclose(x[0], torch.tensor(round(0.3 * 255) / 127.5 - 1))  # 8-bit level 76
    assert torch.allclose(x[1], torch.ones_like(x[1]), atol=1e-6)  # clipped to 1 -> +1
    ramp = torch.linspace(0, 1, 64).view(1, 1, 1, 1, 64).expand(1, 2, 3, 64, 64)
    x = clips_for_i3d(ramp)
    assert float(x[0, 0, 0, 0, 0]) == pytest.approx(-1) and float(x[0, 0, 0, 0, -1]) == pytest.approx(1)
    assert torch.all(x[..., 1:] >= x[..., :-1] - 1e-6)  # a ramp stays a ramp
    with pytest.raises(DataError, match="1 or 3 channels"):
        clips_for_i3d(torch.zeros(1, 2, 2, 8, 8))


# -- the whole pipeline with a stand-in network ---------------------------------------


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("fvd") / "standin_i3d.pt"
    return path, save_standin(path, seed=0)


@pytest.fixture(scope="module")
def glyph_clips() -> tuple[torch.Tensor, torch.Tensor]:
    """Context [12, 10, 1, 64, 64] and future [12, 10, 1, 64, 64] of the glyphs test split."""
    from vpbench.plugins import get_registry

    data = build_dataset(get_registry(), "glyphs", {"test_length": 12}, Path("/nonexistent"), seed=0)
    test = data.split("test")
    clips = torch.stack([test[i] for i in range(12)])
    return clips[:, :10], clips[:, 10:]


def test_fvd_is_registered_as_a_set_level_metric() -> None:
    from vpbench.plugins import get_registry

    spec = get_registry().metrics.get("fvd")
    assert spec.level == "set" and not spec.higher_is_better
    cls = spec.load()
    assert issubclass(cls, SetMetric) and cls is FVD


def test_fvd_pipeline_with_the_standin_network(standin: tuple[Path, str], glyph_clips: tuple[torch.Tensor, torch.Tensor]) -> None:
    path, digest = standin
    context, future = glyph_clips
    blank = torch.zeros_like(future)
    last = context[:, -1:].expand_as(future)
    with accepting(digest):
        metric = FVD(weights=str(path), bootstrap=4, clips_per_pass=5)
        assert metric.available() is None
        states = [metric.new_state() for _ in range(3)]
        for lo in (0, 7):  # two batches, uneven
            sl = slice(lo, lo + 7)
            metric.update_many(states, [future[sl], blank[sl], last[sl]], future[sl], context[sl])
        exact, empty, copy = (metric.compute(s) for s in states)

        # the same numbers from the network and the distance called by hand
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script is deprecated
            net = build_standin(seed=0)
        with torch.no_grad():
            feats = {
                name: net(clips_for_i3d(torch.cat([context, fut], 1)), rescale=False, resize=False, return_features=True)
                .double()
                .numpy()
                for name, fut in (("true", future), ("blank", blank))
            }
    assert feats["true"].shape == (12, FEATURES)
    by_hand = frechet_distance(*gaussian_stats(feats["blank"]), *gaussian_stats(feats["true"]))
    assert empty.value == pytest.approx(by_hand, rel=1e-6)
    assert exact.value == pytest.approx(0.0, abs=1e-9 * max(1.0, by_hand))
    assert empty.value > copy.value > 0  # copy-last keeps the digits, blank loses them
    for v in (exact, empty, copy):
        assert v.n == 12
        assert v.spread is not None and v.spread >= 0
    assert empty.spread is not None and empty.spread > 0
    info = empty.info
    assert info["network_sha256"] == digest and info["reference_sha256"] == I3D_SHA256
    assert info["frames"] == "context+prediction" and info["frames_per_clip"] == 20
    assert info["channels"] == "grey replicated to RGB" and info["videos"] == 12 and info["features"] == FEATURES
    assert "224x224 bilinear" in info["resize"]


def test_update_many_computes_the_truth_features_once(
    standin: tuple[Path, str], glyph_clips: tuple[torch.Tensor, torch.Tensor], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, digest = standin
    context, future = glyph_clips[0][:4], glyph_clips[1][:4]
    preds = [torch.zeros_like(future), context[:, -1:].expand_as(future), context.mean(1, keepdim=True).expand_as(future)]
    with accepting(digest):
        metric = FVD(weights=str(path), bootstrap=0, frames="prediction")
        seen: list[torch.Tensor] = []
        real = metric.features

        def spy(clips: torch.Tensor) -> np.ndarray:
            seen.append(clips)
            return real(clips)

        monkeypatch.setattr(metric, "features", spy)
        many = [metric.new_state() for _ in preds]
        metric.update_many(many, preds, future, context)
        assert len(seen) == 1 + len(preds)
        assert sum(torch.equal(c, future) for c in seen) == 1  # the truth once, frames: prediction only
        one = [metric.new_state() for _ in preds]
        for state, pred in zip(one, preds):
            metric.update(state, pred, future, context)
        for a, b in zip(many, one):
            assert metric.compute(a).value == metric.compute(b).value
    assert metric.compute(many[0]).info["frames_per_clip"] == 10 and metric.compute(many[0]).spread is None


def test_bad_inputs_and_options_are_one_line_errors(standin: tuple[Path, str]) -> None:
    path, digest = standin
    with pytest.raises(ConfigError, match="unknown config key 'eval.metric_options.fvd.weight'"):
        FVD(weight=str(path))
    with pytest.raises(ConfigError, match="fvd.frames"):
        FVD(frames="all")
    with accepting(digest):
        metric = FVD(weights=str(path))
        with pytest.raises(DataError, match="FVD saw no test clips"):
            metric.compute(metric.new_state())
        frames = torch.rand(2, 4, 1, 32, 32)
        with pytest.raises(DataError, match="context"):
            metric.update(metric.new_state(), frames, frames, torch.rand(2, 4, 3, 32, 32))


# -- the hash gate ---------------------------------------------------------------------


def test_the_shipped_accepted_hash_is_the_real_one_only(standin: tuple[Path, str]) -> None:
    path, digest = standin
    assert accepted_hashes() == {I3D_SHA256}
    reason = FVD(weights=str(path)).available()
    assert reason is not None and "\n" not in reason
    assert digest in reason and I3D_SHA256 in reason and I3D_SOURCE in reason and "not loaded" in reason
    with accepting(digest):
        assert accepted_hashes() == {I3D_SHA256, digest}
        with accepting(digest):  # nested blocks: the digest stays until the outer one ends
            pass
        assert digest in accepted_hashes()
    assert accepted_hashes() == {I3D_SHA256}
    with pytest.raises(ValueError):
        with accepting("not-a-digest"):
            pass


def test_missing_weights_are_reported_unavailable_with_hash_and_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    reason = FVD().available()
    assert reason is not None and WEIGHTS_ENV in reason and I3D_SHA256 in reason and I3D_SOURCE in reason
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "i3d_torchscript.pt"))
    reason = FVD().available()
    assert reason is not None and "does not exist" in reason and I3D_SHA256 in reason and "\n" not in reason
    with pytest.raises(CheckpointError, match=I3D_SHA256):
        FVD().update(FVD().new_state(), *(torch.rand(1, 10, 1, 16, 16),) * 3)


def test_a_file_one_byte_off_is_refused_and_none_of_its_code_runs(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    marker = "STANDIN-CODE-RAN-" + "x7Q"
    good = tmp_path / "marked.pt"
    digest = save_standin(good, seed=1, marker=marker)
    data = bytearray(good.read_bytes())
    pad = data.find(b"ZZZZ")  # zip alignment padding: changing it leaves a loadable archive
    assert pad > 0
    data[pad] = ord("Y")
    tampered = tmp_path / "tampered.pt"
    tampered.write_bytes(bytes(data))
    assert hashlib.sha256(bytes(data)).hexdigest() != digest
    capfd.readouterr()

    # the control: loading the tampered file does run its code (TorchScript's __setstate__)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.load(str(tampered))  # type: ignore[no-untyped-call]
    assert marker in capfd.readouterr().out

    with accepting(digest):  # the untampered file's hash is accepted, the tampered one's is not
        metric = FVD(weights=str(tampered))
        reason = metric.available()
        assert reason is not None and I3D_SHA256 in reason and "not loaded" in reason
        frames = torch.rand(2, 10, 1, 32, 32)
        with pytest.raises(CheckpointError, match=f"has SHA-256 {hashlib.sha256(bytes(data)).hexdigest()}"):
            metric.update(metric.new_state(), frames, frames, frames)
        assert marker not in capfd.readouterr().out  # refused before torch.jit.load saw a byte

        ok = FVD(weights=str(good), bootstrap=0)  # the same code, accepted, does run when loaded
        ok.update(ok.new_state(), frames, frames, frames)
        assert marker in capfd.readouterr().out


# -- the real network, where a user or CI has it -------------------------------------------


@pytest.mark.skipif(not os.environ.get(WEIGHTS_ENV), reason=f"{WEIGHTS_ENV} not set (the real I3D is not shipped)")
def test_real_i3d_zeros_against_ones_matches_the_published_calibration() -> None:
    """8 black against 8 white 30-frame videos: 151.17 in common_metrics_on_video_quality's README
    (151.26 and 151.39 in other versions). Constant videos make the covariances zero and the
    resizing irrelevant, so the value is |mu_black - mu_white|^2 of the network alone."""
    metric = FVD(frames="prediction", bootstrap=0)
    assert metric.available() is None
    black = torch.zeros(8, 30, 3, 64, 64)
    state = metric.new_state()
    metric.update(state, torch.ones_like(black), black, black[:, :1])
    value = metric.compute(state)
    assert value.info["network_sha256"] == I3D_SHA256
    assert value.value == pytest.approx(151.2, abs=0.6)


# -- the config key: eval.metric_options ---------------------------------------------


def test_fvd_weights_from_eval_metric_options_through_a_run(standin: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vpbench.engine.run import RunRequest, execute_run
    from vpbench.plugins import get_registry
    from vpbench.records import read_record

    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    path, digest = standin
    sets = ["dataset.test_length=6", "dataset.val_length=4", "eval.batch_size=3", "eval.profile=false",
            "eval.metrics=[mse,fvd]", f"eval.metric_options={{fvd: {{weights: '{path}', bootstrap: 0}}}}"]  # fmt: skip
    with accepting(digest):
        record, run_dir = execute_run(
            RunRequest(model="copy-last", dataset="glyphs", sets=sets, out=tmp_path / "r", device="cpu", progress=False,
                       compare=("blank",), data_root=tmp_path / "data"),
            get_registry(), echo=lambda s: None,
        )  # fmt: skip
    fvd = read_record(run_dir / "record.json").metrics["openstl"]["fvd"]
    assert fvd.level == "set" and fvd.n == 6 and fvd.spread is None and fvd.info["frames"] == "context+prediction"
    assert record.baselines["blank"]["openstl"]["fvd"].mean > fvd.mean > 0  # blank loses the glyphs


def test_eval_metric_options_errors_are_one_line_config_errors(standin: tuple[Path, str]) -> None:
    from vpbench.components import build_metrics
    from vpbench.plugins import get_registry

    registry = get_registry()
    with pytest.raises(ConfigError, match=r"eval.metric_options names unknown metric 'nope'; valid metrics: .*mse"):
        build_metrics(registry, ["mse"], ["openstl"], options={"nope": {"x": 1}})
    with pytest.raises(ConfigError, match=r"eval\.metric_options\.mse: the metric does not take \['scale'\]"):
        build_metrics(registry, ["mse"], ["openstl"], options={"mse": {"scale": 2}})
    with pytest.raises(ConfigError, match=r"eval\.metric_options\.fvd\.framez"):
        build_metrics(registry, None, ["openstl"], options={"fvd": {"framez": "prediction"}})
    path, digest = standin
    with accepting(digest):
        bound, unavailable = build_metrics(registry, ["fvd"], ["openstl"], options={"fvd": {"weights": str(path)}})
    assert not unavailable and [b.name for b in bound] == ["fvd"] and bound[0].metric.config.weights == str(path)
