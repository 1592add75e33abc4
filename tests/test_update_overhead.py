"""benchmarks/update_overhead.py: the profile of one stage-1 update through fairseq's Trainer names
every region, and the regions add up to the update."""
import sys

from helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import update_overhead  # noqa: E402


def test_profile_rows_cover_the_update(capsys):
    rows = {name: (ms, ops) for name, ms, ops in update_overhead.main(["--repeat", "1"])}
    total_ms, total_ops = rows.pop("update total (Trainer.train_step)")
    collate_ms, collate_ops = rows.pop("collate (data-loader worker)")
    assert abs(sum(ms for ms, _ in rows.values()) - total_ms) < 1e-6 * max(total_ms, 1)
    for name in ("forward: visual encoder (CNN + temporal)", "backward", "flallm grad norms", "clip-grads",
                 "optimizer"):
        assert rows[name][0] > 0 and rows[name][1] > 0, (name, rows[name])
    assert collate_ms > 0 and collate_ops > 0
    out = capsys.readouterr().out
    assert "| flallm grad norms |" in out and "| update total (Trainer.train_step) |" in out


def test_run_all_reports_the_fixed_cost_and_the_decode_only_bound():
    from argparse import Namespace

    import run_all

    r = {"machine": {"device": "cpu", "torch": "x", "python": "3", "matmul": "m", "matmul_tflops": 1.0}, "seconds": 1.0,
         "overhead": {"batch": 2, "frames": 2, "frames_hi": 8, "size": 32, "rows": [
             {"optimizer": "adam", "s": 0.2, "s_hi": 0.3, "fixed_s": 0.16, "ops": 1500},
             {"optimizer": "param_group_adam", "s": 0.1, "s_hi": 0.2, "fixed_s": 0.08, "ops": 500}]},
         "loader": {"main_process": {"frames_per_s": 500.0}, "one_worker": {"frames_per_s": 400.0},
                    "one_worker_on_device": {"frames_per_s": 480.0, "runs": 3},
                    "one_worker_packed_on_device": {"frames_per_s": 1440.0, "runs": 3},
                    "decode_only": {"decode_frames_per_s": 600.0, "decode_transform_frames_per_s": 400.0,
                                    "speedup": 1.5}}}
    args = Namespace(device="cpu", quick=True, frames=116, s=run_all.SETTINGS["cpu"])
    table = run_all.markdown(r, args)
    assert ("| fixed per-update cost, `--optimizer adam` vs `param_group_adam` | `light_t_tiny`, batch 2 x 2 and 8 "
            "frames of 32 px, fairseq's Trainer; fixed = time extrapolated to no frames | 160.0 vs 80.0 ms fixed "
            "(200.0 vs 100.0 ms/update at 2 frames); 1500 vs 500 ATen calls/update | 2.00x fixed cost, "
            "3.00x fewer calls |") in table
    assert "| 600 vs 400 sampled frames/s (decode vs decode + transform) | 1.50x per worker |" in table
    assert ("| data loading, 1 worker, `--augment-on-device` | the same, the warp on the model's device | 480 vs 400 "
            "sampled frames/s (median of 3, interleaved) | 1.20x per worker |") in table
    assert ("| data loading, 1 worker, frame packs (`flallm-pack-frames`), `--augment-on-device` | the same frames "
            "packed (Zstandard, one file per video) | 1440 vs 480 (PNG, on device) vs 400 (PNG) sampled frames/s "
            "(medians, interleaved) | 3.00x vs PNG on device, 3.60x vs PNG |") in table


def test_fixed_cost_is_the_update_time_extrapolated_to_no_frames():
    r = update_overhead.fixed_update_cost(("sgd",), frames=1, frames_hi=4, rounds=1, per_round=1, warmup=1)["sgd"]
    assert r["s"] > 0 and r["s_hi"] > 0
    assert r["fixed_s"] == r["s"] - (r["s_hi"] - r["s"]) / 3
