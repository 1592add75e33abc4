"""The rows of ``flallm-experiment``: each a small declarative record named after the paper's table.

A row is a stage 1 (or none), then a stage 2 (or none: the stage-1 model is the system). Rows that
describe the same work share it: the runner keys every step by what it computes (see steps.py), so
``sampling_25``, ``adapter_sign``, ``mbart_pretrained`` and the ``light_t_*`` row of the run's own
stage-1 size are the ``factorized`` runs themselves, and one stage 1 feeds every stage-2 row built on it.

The controls (table "diag") frame every figure: ``text_only`` (black frames: what the targets alone
give, the floor), ``recognition`` (the same stage 1 trained and scored on the sign sequences: what the
visual side can learn from these videos at all), ``gloss2text`` (no video: the sign sequence translated
by a text transformer, the ceiling of a perfect recogniser) and ``scratch`` (the paper's stage 1 from a
random ResNet-18, whatever the run's backbone weights). Every score is also decoded with the video
masked (black frames), so a row that does not look at the video shows it.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence

from flallm_plugin.data.visual_input import FEATURE_LEVELS


@dataclass(frozen=True)
class Stage1(object):
    """Visual initialing (``light_t``): what differs from the run's stage-1 recipe."""

    size: Optional[str] = None  # tiny / small / base / large (Table 7); None: the run's --stage1-arch
    sampling_rate: Optional[float] = None  # Table 6; None: the run's --sampling-rate
    blank_video: bool = False  # the text_only diagnostic (task option --blank-video)
    aux: Optional[str] = None  # "contrastive" / "pseudo_gloss": the run's --contrastive-args / --pseudo-gloss-args added
    backbone: Optional[str] = None  # "none": a random ResNet-18 whatever the run's --visual-backbone-weights
    target: str = "text"  # "gloss": trained and scored on the sign sequences (--gloss-data): the recognition control


@dataclass(frozen=True)
class Stage2(object):
    """LLM fine-tuning (``sign_mbart``): where its input comes from and what it trains."""

    input: str = "features"  # cached stage-1 features at the adapter's level, or "video"
    adapter_input: str = "sign"  # Table 8: sign / frame / light_t
    freeze_visual: str = "backbone+temporal"  # Table 9: backbone+temporal / backbone / none
    visual_init: str = "stage1"  # "stage1": the row's stage-1 visual encoder; "backbone": ResNet weights only
    pretrained_mbart: bool = True  # Table 10: False = randomly initialised mBART

    @property
    def trains_visual(self) -> bool:
        return self.freeze_visual != "backbone+temporal"


@dataclass(frozen=True)
class Row(object):
    name: str
    table: str  # the paper's table ("T4" ... "T10"), "ref", "diag" (a control) or "extra"
    stage1: Optional[Stage1]
    stage2: Optional[Stage2]
    trains: str  # the trained parts, as the row means them (checked from the checkpoints by the tests)
    gloss2text: bool = False  # no video: a text transformer from the sign sequence to the sentence (the ceiling)

    @property
    def needs_gloss_data(self) -> bool:
        return self.gloss2text or (self.stage1 is not None and self.stage1.target == "gloss")


SIZES_HELP = ("the stage-1 arch of every row but T7's (light_t = base, 3+3 layers d 512; T7 rows use "
              "light_t_tiny / light_t_small / light_t / light_t_large)")
FROZEN_VISUAL = "LLM-Adapter + mBART"
ROWS: List[Row] = [
    Row("factorized", "ref", Stage1(), Stage2(), f"stage 1: all; stage 2: {FROZEN_VISUAL}"),
    Row("joint", "T4", None, Stage2(input="video", freeze_visual="none", visual_init="backbone"),
        "visual encoder + LLM-Adapter + mBART, end to end (no stage 1)"),
    Row("no_visual_init", "T5", None, Stage2(input="video", visual_init="backbone"),
        f"{FROZEN_VISUAL} (ResNet weights frozen, random temporal module, no stage 1)"),
    Row("stage1_only", "T5", Stage1(), None, "Light-T model: all (no stage 2)"),
    *[Row(f"sampling_{name}", "T6", Stage1(sampling_rate=rate), Stage2(), f"stage 1 at {name} % of the frames; "
          f"stage 2: {FROZEN_VISUAL}") for name, rate in (("100", 1.0), ("50", 0.5), ("25", 0.25), ("12.5", 0.125))],
    *[Row(f"light_t_{size}", "T7", Stage1(size=size), Stage2(), f"stage 1 with Light-T {size}; stage 2: {FROZEN_VISUAL}")
      for size in ("tiny", "small", "base", "large")],
    *[Row(f"adapter_{level}", "T8", Stage1(), Stage2(adapter_input=level),
          f"stage 2: {FROZEN_VISUAL} reading {level}-level features") for level in FEATURE_LEVELS],
    *[Row(f"freeze_{part.replace('+', '_')}", "T9", Stage1(), Stage2(input="video", freeze_visual=part),
          f"stage 2 on video, frozen: {part}") for part in ("backbone+temporal", "backbone", "none")],
    Row("mbart_pretrained", "T10", Stage1(), Stage2(), f"stage 2: {FROZEN_VISUAL} from the pretrained mBART"),
    Row("mbart_random", "T10", Stage1(), Stage2(pretrained_mbart=False), f"stage 2: {FROZEN_VISUAL} from a random mBART"),
    Row("text_only", "diag", Stage1(blank_video=True, backbone="none"), None,
        "Light-T model on black frames: the targets alone (the floor)"),
    Row("gloss2text", "diag", None, None, "a text transformer from the sign sequence to the sentence (the ceiling)",
        gloss2text=True),
    Row("recognition", "diag", Stage1(target="gloss"), None,
        "Light-T model on the sign sequences: what the visual side can learn from these videos"),
    Row("scratch", "diag", Stage1(backbone="none"), None, "Light-T model from a random ResNet-18 (the paper's loss)"),
    Row("scratch_pseudo_gloss", "extra", Stage1(backbone="none", aux="pseudo_gloss"), None,
        "Light-T model from a random ResNet-18 with --pseudo-gloss-args"),
    Row("recognition_scratch_pseudo_gloss", "extra", Stage1(target="gloss", backbone="none", aux="pseudo_gloss"), None,
        "recognition from a random ResNet-18 with --pseudo-gloss-args"),
    Row("pseudo_gloss", "extra", Stage1(aux="pseudo_gloss"), Stage2(), "factorized, stage 1 with --pseudo-gloss-args"),
    Row("contrastive", "extra", Stage1(aux="contrastive"), Stage2(), "factorized, stage 1 with --contrastive-args"),
]
BY_NAME = {r.name: r for r in ROWS}
# each is one more stage 1 that the paper's tables do not need (from scratch, or with a loss beyond the paper):
# run only when named in --rows
OPT_IN = ("scratch", "scratch_pseudo_gloss", "recognition_scratch_pseudo_gloss", "pseudo_gloss")


def select_rows(spec: Optional[str], have_mbart: bool, have_contrastive: bool, have_gloss: bool = False) -> List[Row]:
    """``--rows a,b,c`` (default: every row the run can give a meaning to, but :data:`OPT_IN`'s)."""
    def pointless(row: Row) -> Optional[str]:
        if row.stage1 is not None and row.stage1.aux == "contrastive" and not have_contrastive:
            return "needs --contrastive-args"
        if row.needs_gloss_data and not have_gloss:
            return ("needs --gloss-data (the same videos prepared with the sign sequences as targets, e.g. "
                    "prep_phoenix14t.py --target-column orth)")
        if row.table == "T10" and not have_mbart:
            return "--mbart none: every stage-2 row already starts from a random mBART; give --mbart PATH"
        return None

    if not spec:
        return [r for r in ROWS if pointless(r) is None and r.name not in OPT_IN]
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise ValueError(f"--rows: unknown row(s) {', '.join(unknown)}; rows: {', '.join(BY_NAME)}")
    chosen = [BY_NAME[n] for n in dict.fromkeys(names)]
    for row in chosen:
        why = pointless(row)
        if why:
            raise ValueError(f"--rows: row {row.name} {why}")
    return chosen


def row_names(rows: Sequence[Row]) -> str:
    return ",".join(r.name for r in rows)
