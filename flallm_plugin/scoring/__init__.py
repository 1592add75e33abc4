import importlib
import os

# import every scorer module so that it registers itself (as fairseq.scoring does)
for _file in sorted(os.listdir(os.path.dirname(__file__))):
    if _file.endswith(".py") and not _file.startswith("_"):
        importlib.import_module("flallm_plugin.scoring." + _file[:-3])
