"""examples/pretrain_backbone_pseudo_gloss.py: the ResNet-18 pre-trained on which words each training video's
sentence contains (Sign2GPT's pseudo-glosses) as a separate stage; its file loads through --visual-backbone-weights."""
import json
import os
import sys

import pytest
import torch

from helpers import assert_resnet18_file, run

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))
from pretrain_backbone_pseudo_gloss import (  # noqa: E402
    PseudoGlossHead,
    bag_of_words,
    build_vocab,
    ctc_pseudo_gloss_loss,
    pseudo_gloss_loss,
    recall_counts,
    word_sequences,
)


def test_vocabulary_bags_and_recall():
    texts = ["Der Hund bellt", "der Hund schläft", "die Katze schläft der"]
    vocab = build_vocab(texts, min_count=2)
    assert vocab == {"der": 0, "hund": 1, "schläft": 2}  # by sentence count, then alphabetical; case folded
    bags = bag_of_words(texts, vocab)
    torch.testing.assert_close(bags, torch.tensor([[1.0, 1, 0], [1, 1, 1], [1, 0, 1]]))
    scores = torch.tensor([[0.9, 0.1, 0.5],   # K = 2: top 2 are der, schläft -> 1 hit
                           [0.1, 0.2, 0.3],   # K = 3: all -> 3 hits
                           [0.0, 0.9, 0.8]])  # K = 2: hund, schläft -> 1 hit
    hits, n = recall_counts(scores, bags)
    assert (hits.item(), n.item()) == (5, 7)
    loss, hits2, _ = pseudo_gloss_loss(scores, bags)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(scores, bags, reduction="sum") / 3
    assert loss.item() == pytest.approx(expected.item()) and hits2.item() == 5


def test_head_scores_only_the_valid_frames():
    torch.manual_seed(0)
    head = PseudoGlossHead(8, 6, prior=torch.tensor([0.5, 0.1, 0.01, 0.9]))
    torch.testing.assert_close(torch.sigmoid(head.out.bias), torch.tensor([0.5, 0.1, 0.01, 0.9]))
    short = torch.randn(1, 3, 8)
    batch = torch.cat([torch.cat([short, 1e3 * torch.ones(1, 4, 8)], dim=1), torch.randn(1, 7, 8)])
    alone = head(short, torch.tensor([3]))
    together = head(batch, torch.tensor([3, 7]))
    torch.testing.assert_close(together[:1], alone)  # padding (here huge) changes nothing
    assert alone.shape == (1, 4)


def test_ctc_loss_reads_the_words_in_order_and_only_the_valid_frames():
    vocab = {"a": 0, "b": 1, "c": 2}
    assert word_sequences(["A x B a", "c"], vocab) == [[0, 1, 0], [2]]  # out-of-vocabulary words left out
    torch.manual_seed(0)
    head = PseudoGlossHead(8, 6, prior=torch.full((3,), 0.3), blank=True)
    assert head.out.out_features == 4  # the words and CTC's blank, last
    short, other = torch.randn(1, 5, 8), torch.randn(1, 7, 8)
    batch = torch.cat([torch.cat([short, 1e3 * torch.ones(1, 2, 8)], dim=1), other])
    seqs = [[0, 1], [2, 2, 1]]
    bags = bag_of_words(["a b", "c c b"], vocab)
    alone = [ctc_pseudo_gloss_loss(head.frame_logits(x, torch.tensor([n])), torch.tensor([n]), [q], bags[i:i + 1])
             for i, (x, n, q) in enumerate(((short, 5, seqs[0]), (other, 7, seqs[1])))]
    lengths = torch.tensor([5, 7])
    together = ctc_pseudo_gloss_loss(head.frame_logits(batch, lengths), lengths, seqs, bags)
    # the mean over videos of each video's CTC, padding (here huge) ignored; recall counts add up
    assert together[0].item() == pytest.approx((alone[0][0].item() + alone[1][0].item()) / 2, rel=1e-5)
    assert together[1].item() == alone[0][1].item() + alone[1][1].item() and together[2].item() == 4
    lp = torch.log_softmax(head.frame_logits(other, torch.tensor([7])), -1).transpose(0, 1)
    expected = torch.nn.functional.ctc_loss(lp, torch.tensor([2, 2, 1]), torch.tensor([7]), torch.tensor([3]),
                                            blank=3, reduction="sum")
    assert alone[1][0].item() == pytest.approx(expected.item(), rel=1e-5)
    # the order counts: frames saying a, blank, b, blank fit "a b" and not "b a"
    logits = torch.tensor([[[9.0, 0, 0, 0], [0, 0, 0, 9], [0, 9, 0, 0], [0, 0, 0, 9]]])
    bag = bag_of_words(["a b"], vocab)
    in_order = ctc_pseudo_gloss_loss(logits, torch.tensor([4]), [[0, 1]], bag)
    reversed_ = ctc_pseudo_gloss_loss(logits, torch.tensor([4]), [[1, 0]], bag)
    assert in_order[0].item() < 0.01 < 10 < reversed_[0].item()
    assert in_order[1].item() == in_order[2].item() == 2  # recall: both words are the video's best two


def test_pseudo_gloss_backbone_is_a_torchvision_resnet18_state_dict(stage1, tmp_path):
    out = tmp_path / "pg.pth"
    proc = run([sys.executable, "examples/pretrain_backbone_pseudo_gloss.py", stage1["data"], "--out", out,
                "--epochs", "1", "--videos-per-batch", "4", "--min-count", "2", "--hidden", "16", "--threads", "1"],
               label="pretrain_backbone_pseudo_gloss.py")
    summary = json.loads(proc.stdout)
    assert summary["init"] is None and summary["train_videos"] > 0 and summary["vocab"] > 0
    row = summary["history"][0]
    assert row["train_loss"] > 0 and row["valid_loss"] > 0 and 0 <= row["valid_recall"] <= 100
    assert set(summary["prior_recall"]) == {"train", "valid"}
    assert_resnet18_file(out)
    # --loss ctc: the words in order, CTC over the frames, from the file just written
    ctc = json.loads(run([sys.executable, "examples/pretrain_backbone_pseudo_gloss.py", stage1["data"], "--out",
                          tmp_path / "ctc.pth", "--init", out, "--loss", "ctc", "--epochs", "1", "--videos-per-batch",
                          "4", "--min-count", "2", "--hidden", "16", "--threads", "1"],
                         label="pretrain_backbone_pseudo_gloss.py --loss ctc").stdout)
    assert ctc["loss"] == "ctc" and ctc["init"] == str(out) and ctc["history"][0]["train_loss"] > 0
    assert_resnet18_file(tmp_path / "ctc.pth")
    # a vocabulary that would be empty is one line naming the split file, and nothing is written
    refused = run([sys.executable, "examples/pretrain_backbone_pseudo_gloss.py", stage1["data"], "--out",
                   tmp_path / "x.pth", "--min-count", "100000"], check=False)
    assert refused.returncode != 0 and not (tmp_path / "x.pth").exists()
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{stage1['data']}/train.tsv: no word is in 100000 sentences"), refused.stderr
