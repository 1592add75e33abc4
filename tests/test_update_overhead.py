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
