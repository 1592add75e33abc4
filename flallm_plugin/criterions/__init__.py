import importlib
import os

# import every criterion module so that it registers itself (as fairseq.criterions does)
for _file in sorted(os.listdir(os.path.dirname(__file__))):
    if _file.endswith(".py") and not _file.startswith("_"):
        importlib.import_module("flallm_plugin.criterions." + _file[:-3])
