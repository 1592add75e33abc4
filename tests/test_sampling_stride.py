"""SignDataConfig.sampling_stride: the one place that turns a sampling rate into a stride."""
import pytest
import yaml

from flallm_plugin.data.data_cfg import SignDataConfig


def _cfg(tmp_path, **config):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return SignDataConfig(str(path))


def test_video_stride_from_config_or_override(tmp_path):
    assert _cfg(tmp_path).sampling_stride() == 4  # default rate 0.25
    cfg = _cfg(tmp_path, sampling_rate=0.125)
    assert cfg.sampling_stride() == 8
    for rate, stride in ((1.0, 1), (0.5, 2), (0.25, 4), (0.125, 8), (1 / 3, 3)):
        assert cfg.sampling_stride(rate) == stride


def test_features_have_stride_one(tmp_path):
    cfg = _cfg(tmp_path, input_type="features", sampling_rate=1.0, source_sampling_rate=0.25)
    assert cfg.sampling_stride() == 1 and cfg.sampling_stride(1.0) == 1
    with pytest.raises(ValueError, match="cached features were sampled at extraction"):
        cfg.sampling_stride(0.5)


@pytest.mark.parametrize("rate", [0.0, -0.5, 1.5, 0.3, float("nan"), float("inf")])
def test_bad_rates(tmp_path, rate):
    cfg = _cfg(tmp_path, sampling_rate=rate)
    with pytest.raises(ValueError) as e:
        cfg.sampling_stride()
    assert str(e.value).startswith(f"{cfg.path}: sampling_rate: sampling rate ")  # from the config: names it
    assert "use one of (1.0, 0.5, 0.25, 0.125)" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ValueError) as e:
        _cfg(tmp_path).sampling_stride(rate)
    assert str(e.value).startswith(f"--sampling-rate {rate}: sampling rate ")  # the task's option: names it
    assert "use one of (1.0, 0.5, 0.25, 0.125)" in str(e.value)
