from flallm_plugin.data.data_cfg import SignDataConfig
from flallm_plugin.data.sign_translation_dataset import (
    SignTranslationDataset,
    SignTranslationDatasetCreator,
    SignTranslationDatasetItem,
)
from flallm_plugin.data.video_io import SignDataError

__all__ = [
    "SignDataConfig",
    "SignDataError",
    "SignTranslationDataset",
    "SignTranslationDatasetCreator",
    "SignTranslationDatasetItem",
]
