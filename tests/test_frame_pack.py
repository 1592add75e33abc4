"""Frame packs (flallm_plugin/data/frame_pack.py) and flallm-pack-frames: the same pixels as the frame folders
and video files they are made from, through the dataset's sampling and augmentation; damaged packs are one line."""
import os
import shutil

import numpy as np
import pytest
import torch

import prep_how2sign
import prep_phoenix14t
from flallm_plugin.cli import pack_frames
from flallm_plugin.data.data_cfg import SignDataConfig
from flallm_plugin.data.errors import SignDataError
from flallm_plugin.data.frame_pack import pack_frame_count, read_frame_pack, write_frame_pack
from flallm_plugin.data.sign_translation_dataset import SignTranslationDatasetCreator, read_manifest
from flallm_plugin.data.video_io import count_frames, read_frames
from flallm_plugin.data.visual_input import VisualInputSpec

SMALL = ["--resize", "32", "--crop", "28", "--vocab-size", "100", "--workers", "1"]


def _frames(n=5, h=7, w=6, seed=0):
    rs = np.random.RandomState(seed)
    return [rs.randint(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def test_pack_round_trip_decodes_the_asked_frames(tmp_path):
    frames = _frames()
    path = str(tmp_path / "v.flpack")
    assert write_frame_pack(path, frames) == 5
    assert pack_frame_count(path) == count_frames(path) == 5
    got = read_frames(path, [0, 2, 4], n_frames=5)
    for g, i in zip(got, [0, 2, 4]):
        np.testing.assert_array_equal(g, frames[i])
        assert g.flags.writeable and g.dtype == np.uint8
    assert read_frame_pack(path, []) == []
    assert not [n for n in os.listdir(tmp_path) if n != "v.flpack"]  # written through a temporary name


def test_bad_packs_are_one_line_naming_the_file(tmp_path):
    path = str(tmp_path / "v.flpack")
    write_frame_pack(path, _frames())
    with pytest.raises(SignDataError, match=r"the pack holds 5 frames but the manifest says n_frames=6"):
        read_frames(path, [0], n_frames=6)
    with pytest.raises(SignDataError, match=r"frame 5 requested but the pack holds 5 frames"):
        read_frames(path, [0, 5])
    with pytest.raises(SignDataError, match=r"start/end apply to video files"):
        read_frames(path, [0], start=1.0)
    data = open(path, "rb").read()
    cases = {"truncated": data[:-3], "magic": b"XXXXXXXX" + data[8:],
             "blob": data[:-20] + bytes(20)}  # the last frame's compressed bytes overwritten
    expected = {"truncated": "truncated or damaged frame pack", "magic": "not a frame pack",
                "blob": "frame 4 does not decompress"}
    for name, content in cases.items():
        bad = tmp_path / f"{name}.flpack"
        bad.write_bytes(content)
        with pytest.raises(SignDataError) as e:
            read_frames(str(bad), [0, 4])
        msg = str(e.value)
        assert msg.startswith(f"{bad}: ") and expected[name] in msg and "flallm-pack-frames" in msg, msg
    with pytest.raises(ValueError, match="a pack holds frames of one size"):
        write_frame_pack(str(tmp_path / "mixed.flpack"), _frames(h=7) + _frames(h=8))
    assert not (tmp_path / "mixed.flpack").exists()


def _items(data, split, augment_on_device=False, epoch=2):
    cfg = SignDataConfig(os.path.join(data, "config.yaml"))
    ds = SignTranslationDatasetCreator.from_tsv(data, cfg, split, None, None, is_train_split=True,
                                                visual_input=VisualInputSpec.from_data_cfg(cfg), augment=True,
                                                seed=3, augment_on_device=augment_on_device)
    ds.set_epoch(epoch)
    return [ds[i] for i in range(len(ds))]


@pytest.mark.parametrize("source", ["phoenix", "how2sign"])
def test_packed_data_dir_gives_the_same_training_pixels(source, phoenix_release, how2sign_release, tmp_path):
    """PHOENIX frame folders and How2Sign clips of video files: packed, the dataset's sampled and augmented
    frames (and the on-device path's decoded frames and warps) are the original's, bit for bit."""
    module, release, split = ((prep_phoenix14t, phoenix_release, "train") if source == "phoenix"
                              else (prep_how2sign, how2sign_release, "train"))
    data, packed = str(tmp_path / "data"), str(tmp_path / "packed")
    module.main(["--data-root", str(release), "--out-dir", data] + SMALL)
    summary = pack_frames.pack(pack_frames.get_parser().parse_args(["--data", data, "--out-dir", packed]))
    before, after = read_manifest(os.path.join(data, f"{split}.tsv")), read_manifest(os.path.join(packed, f"{split}.tsv"))
    assert [(r["id"], r["n_frames"], r["tgt_text"], r["speaker"]) for r in before] == \
        [(r["id"], r["n_frames"], r["tgt_text"], r["speaker"]) for r in after]
    assert all(r["video"] == f"packed/{split}/{r['id']}.flpack" for r in after)
    assert summary[split]["frames"] == sum(int(r["n_frames"]) for r in before)
    for on_device in (False, True):
        for a, b in zip(_items(data, split, on_device), _items(packed, split, on_device), strict=True):
            torch.testing.assert_close(a.source, b.source, rtol=0, atol=0)
            if on_device:
                np.testing.assert_array_equal(a.warp, b.warp)
    # a second run into the written directory needs --overwrite, and then replaces it whole
    with pytest.raises(ValueError, match="--overwrite"):
        pack_frames.pack(pack_frames.get_parser().parse_args(["--data", data, "--out-dir", packed]))
    pack_frames.pack(pack_frames.get_parser().parse_args(["--data", data, "--out-dir", packed, "--overwrite",
                                                          "--splits", split]))
    assert sorted(n for n in os.listdir(packed) if n.endswith(".tsv")) == [f"{split}.tsv"]


def test_a_bad_source_frame_names_the_manifest_row_and_nothing_is_written(phoenix_release, tmp_path):
    release, data, packed = str(tmp_path / "release"), str(tmp_path / "data"), str(tmp_path / "packed")
    shutil.copytree(phoenix_release, release)  # the session's release is only read
    prep_phoenix14t.main(["--data-root", release, "--out-dir", data] + SMALL)
    row = read_manifest(os.path.join(data, "dev.tsv"))[1]
    folder = os.path.join(SignDataConfig(os.path.join(data, "config.yaml")).video_root, row["video"])
    victim = sorted(os.listdir(folder))[0]
    with open(os.path.join(folder, victim), "wb") as f:
        f.write(b"not a png")
    with pytest.raises(SignDataError) as e:
        pack_frames.pack(pack_frames.get_parser().parse_args(["--data", data, "--out-dir", packed]))
    msg = str(e.value)
    assert msg.startswith(f"{os.path.join(data, 'dev.tsv')}: line {row['_line']} (id {row['id']}): ") and \
        "cannot read image" in msg, msg
    assert not os.path.exists(packed) and not [n for n in os.listdir(tmp_path) if n.startswith(".packed")]
    assert folder.startswith(release)
