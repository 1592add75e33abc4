"""The mBART release format shared by the mBART tools (trim, convert, pre-train).

mbart.cc25 as released (``model.pt``, ``dict.txt``, ``sentence.bpe.model``): ``dict.txt``
is a plain fairseq dictionary without language tags and ``<mask>``; fairseq's
``multilingual_denoising`` task appends ``[xx_XX]`` for each language and then ``<mask>``
when it loads it, and the checkpoint's embeddings have exactly that many rows.
"""
from typing import List

# mbart.cc25's languages in release order (the order of its language-tag rows).
MBART_CC25_LANGS = (
    "ar_AR,cs_CZ,de_DE,en_XX,es_XX,et_EE,fi_FI,fr_XX,gu_IN,hi_IN,it_IT,ja_XX,kk_KZ,ko_KR,"
    "lt_LT,lv_LV,my_MM,ne_NP,nl_XX,ro_RO,ru_RU,si_LK,tr_TR,vi_VN,zh_CN"
).split(",")


def parse_lang_codes(langs) -> List[str]:
    """Language codes from a comma-separated string or a list; blanks dropped, spaces stripped."""
    if isinstance(langs, str):
        langs = langs.split(",")
    return [lang.strip() for lang in langs if lang.strip()]


def release_dictionary(dict_path: str, langs):
    """The dictionary of a release ``dict.txt`` as fairseq's ``multilingual_denoising`` task
    builds it (``--add-lang-token``): ``Dictionary.load(dict_path)``, then ``[lang]`` for each of
    ``langs`` in order, then ``<mask>``."""
    from fairseq.data import Dictionary

    dictionary = Dictionary.load(dict_path)
    for lang in parse_lang_codes(langs):
        dictionary.add_symbol(f"[{lang}]")
    dictionary.add_symbol("<mask>")
    return dictionary
