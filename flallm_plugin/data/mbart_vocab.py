"""Facts about mbart.cc25's vocabulary shared by the mBART tools (trim, convert, pre-train)."""
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
