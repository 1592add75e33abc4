"""flallm: FLa-LLM gloss-free sign language translation as a fairseq plugin."""
from setuptools import find_packages, setup

setup(
    name="flallm_plugin",
    version="0.1.0",
    description=(
        "FLa-LLM (factorized learning assisted with an LLM, LREC-COLING 2024) "
        "for gloss-free sign language translation, as a fairseq --user-dir plugin"
    ),
    python_requires=">=3.10",
    packages=find_packages(include=["flallm_plugin", "flallm_plugin.*", "flallm_tools", "flallm_tools.*"]),
    install_requires=[
        # torch/torchvision/ve-fairseq are installed by the Makefile (see requirements.txt)
        "sentencepiece",
        "opencv-python-headless>=4.10",  # cv2.IMREAD_COLOR_RGB
        "pyyaml",
        "zstandard",  # frame packs (flallm_plugin/data/frame_pack.py)
        "sacrebleu>=2.0",
        "tqdm",
    ],
    extras_require={
        "hf": ["transformers"],
        "plot": ["matplotlib", "tensorboardX"],
    },
    entry_points={
        "console_scripts": [
            "flallm-extract-features = flallm_plugin.cli.extract_features:cli_main",
            "flallm-score = flallm_plugin.cli.score:cli_main",
            "flallm-help = flallm_plugin.cli.help:cli_main",
            "flallm-export = flallm_plugin.cli.export:cli_main",
            "flallm-translate = flallm_plugin.cli.translate:cli_main",
            "flallm-experiment = flallm_tools.cli.experiment:cli_main",
            "flallm-serve = flallm_plugin.cli.serve:cli_main",
            "flallm-pack-frames = flallm_plugin.cli.pack_frames:cli_main",
        ],
    },
)
