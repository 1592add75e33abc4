"""Synthetic sign language data in the real release layouts, for the demo and the tests.

* :mod:`~flallm_tools.synthetic.weather`: the demo's procedural signers and weather-forecast
  language in the PHOENIX-2014-T layout (:func:`generate`);
* :mod:`~flallm_tools.synthetic.hard`: the hard preset (321 signs, a German-like grammar with
  thousands of word types, co-articulation, 9 signers), PHOENIX-2014-T or How2Sign layout
  (:func:`generate_hard`; its language: :mod:`~flallm_tools.synthetic.hard_language`);
* :mod:`~flallm_tools.synthetic.blocks`: coloured-block sentences that tiny models overfit,
  in the PHOENIX-2014-T, How2Sign and CSL-Daily layouts (:func:`make_phoenix` ...);
* :mod:`~flallm_tools.synthetic.releases` and :mod:`~flallm_tools.synthetic.frames`: the
  writers of those layouts, shared by both.
"""
from flallm_tools.synthetic.blocks import (  # noqa
    DEFAULT_SPLITS, WORDS, make_csl_daily, make_how2sign, make_phoenix, write_lm_corpus,
)
from flallm_tools.synthetic.frames import write_image_folder, write_mp4  # noqa: F401
from flallm_tools.synthetic.weather import generate, render_sign_sheet  # noqa: F401
from flallm_tools.synthetic.hard import generate_hard  # noqa: F401
