"""benchmarks/loader_speed.py --decode-only: decoding alone delivers more frames/s than decoding + the
transform, both measured on the same sampled frames of the task's dataset."""
import sys

from helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import loader_speed  # noqa: E402


def test_decode_only_bound(tmp_path):
    data = loader_speed.make_phoenix_sized_data(str(tmp_path), videos=2, frames=16)
    r = loader_speed.decode_only_rate(data, videos=2, sampling_rate=0.25, rounds=2)
    assert r["frames"] == 2 * 2 * 4
    assert r["decode_frames_per_s"] > 0 and r["decode_transform_frames_per_s"] > 0
    assert r["speedup"] == r["decode_frames_per_s"] / r["decode_transform_frames_per_s"]
