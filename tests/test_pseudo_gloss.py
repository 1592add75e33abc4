"""The ``sign_pseudo_gloss_ce`` criterion: label-smoothed CE + an order-free pseudo-gloss loss on the encoder.

In-process on the session fixture's stage-1 data (light_t_tiny), as tests/test_contrastive.py.
"""
import math

import pytest
import torch

from fairseq import options
from fairseq.criterions.label_smoothed_cross_entropy import LabelSmoothedCrossEntropyCriterion
from flallm_plugin.criterions.sign_pseudo_gloss_ce import PRIOR
from helpers import USER_DIR
from test_contrastive import TRAIN_OPTS, build


def test_weight_zero_is_label_smoothed_cross_entropy_and_the_term_adds_on_top(stage1):
    args, task, model, crit0, sample = build(stage1["data"], criterion="sign_pseudo_gloss_ce")
    lsce = task.build_criterion(options.parse_args_and_arch(options.get_training_parser(), [
        stage1["data"], "--user-dir", USER_DIR, "--task", "sign_translation", "--arch", "light_t_tiny",
        "--criterion", "label_smoothed_cross_entropy", *TRAIN_OPTS]))
    model.eval()
    ref_loss, ref_size, ref_log = lsce(model, sample)
    loss0, size0, log0 = crit0(model, sample)
    assert torch.equal(loss0, ref_loss) and size0 == ref_size and log0.keys() == ref_log.keys()
    assert list(crit0.parameters()) == []

    _, _, _, crit, _ = build(stage1["data"], "light_t_tiny", "--pseudo-gloss-weight", "0.5",
                             criterion="sign_pseudo_gloss_ce")
    loss, size, log = crit(model, sample)
    assert torch.equal(log["nll_loss"], ref_log["nll_loss"]) and size == ref_size
    # each video's distinct content tokens: the positives
    content = [set(t.tolist()) - set(range(task.target_dictionary.nspecial)) for t in sample["target"]]
    assert log["pseudo_gloss_npos"] == sum(len(c) for c in content)
    assert 0 <= log["pseudo_gloss_hits"] <= log["pseudo_gloss_npos"]
    torch.testing.assert_close(loss, ref_loss + 0.5 * size * log["pseudo_gloss_loss"] / log["pseudo_gloss_npos"])
    assert sorted(n for n, _ in crit.named_parameters()) == ["bias", "log_scale"]
    assert torch.sigmoid(crit.bias[0]).item() == pytest.approx(PRIOR)


def test_the_loss_knows_which_tokens_occur_not_their_order():
    """An encoder state equal to a token's embedding scores that token: the BCE is low when the sentence holds
    the tokens the video shows, in any order, and high when it holds others."""
    from types import SimpleNamespace

    from fairseq.data import Dictionary
    from flallm_plugin.criterions.sign_pseudo_gloss_ce import SignPseudoGlossCECriterion

    d = Dictionary()
    for w in "a b c d e f".split():
        d.add_symbol(w)
    crit = SignPseudoGlossCECriterion(SimpleNamespace(target_dictionary=d), False, 0.0, pseudo_gloss_weight=1.0)
    emb = torch.randn(len(d), 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        crit.log_scale.fill_(math.log(8.0))
    shows = [d.index("a"), d.index("c"), d.index("e")]
    states = emb[shows].unsqueeze(0) * 3  # 1 x 3 x C: one position per shown token
    valid = torch.ones(1, 3, dtype=torch.bool)
    eos = d.eos()
    reordered = torch.tensor([[d.index("e"), d.index("a"), d.index("c"), eos]])
    other = torch.tensor([[d.index("b"), d.index("d"), d.index("f"), eos]])
    same_loss, n, hits = crit.pseudo_gloss_loss(states, valid, emb, reordered)
    other_loss, _, other_hits = crit.pseudo_gloss_loss(states, valid, emb, other)
    assert n == 3 and hits == 3 and other_hits == 0
    assert same_loss < other_loss / 3
    # a padded position never scores: the same video with a padded copy of another token's state
    padded = torch.cat([states, emb[[d.index("b")]].unsqueeze(0) * 3], 1)
    mask = torch.tensor([[True, True, True, False]])
    torch.testing.assert_close(crit.pseudo_gloss_loss(padded, mask, emb, reordered)[0], same_loss)


def test_warm_up_trains_the_encoder_alone(stage1):
    """--pseudo-gloss-only-updates: during the warm-up the decoder gets no gradient, the visual encoder does;
    after it both do; validation (eval mode) always scores both."""
    args, task, model, crit, sample = build(stage1["data"], "light_t_tiny", "--pseudo-gloss-weight", "1",
                                            "--pseudo-gloss-only-updates", "2", criterion="sign_pseudo_gloss_ce")
    model.train()
    grads = {}
    for update in (1, 2):
        crit.set_num_updates(update)
        model.zero_grad()
        crit(model, sample)[0].backward()
        grads[update] = {n: (p.grad.norm().item() if p.grad is not None else 0.0) for n, p in model.named_parameters()}
    decoder = [n for n in grads[1] if n.startswith("decoder.layers.")]
    assert max(grads[1][n] for n in decoder) == 0 and max(grads[2][n] for n in decoder) > 0
    assert max(grads[1][n] for n in grads[1] if n.startswith("encoder.visual.backbone.")) > 0
    model.eval()
    crit.set_num_updates(0)
    loss, size, log = crit(model, sample)
    ce = LabelSmoothedCrossEntropyCriterion.forward(crit, model, sample)[0]
    torch.testing.assert_close(loss, ce + size * log["pseudo_gloss_loss"] / log["pseudo_gloss_npos"])


@pytest.mark.parametrize("extra,expected", [
    (["--pseudo-gloss-visual", "adapter"], "--pseudo-gloss-visual acts only with"),
    (["--pseudo-gloss-only-updates", "3"], "--pseudo-gloss-only-updates acts only with"),
    (["--pseudo-gloss-weight", "-1"], "must be >= 0"),
])
def test_switches_that_cannot_take_effect_are_refused(stage1, extra, expected):
    with pytest.raises(ValueError, match=expected):
        build(stage1["data"], "light_t_tiny", *extra, criterion="sign_pseudo_gloss_ce")
