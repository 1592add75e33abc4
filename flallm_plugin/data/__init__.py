from flallm_plugin.data.data_cfg import SignDataConfig
from flallm_plugin.data.errors import SignDataError
from flallm_plugin.data.sign_translation_dataset import (
    SignTranslationDataset,
    SignTranslationDatasetCreator,
    SignTranslationDatasetItem,
)

__all__ = [
    "SignDataConfig",
    "SignDataError",
    "SignTranslationDataset",
    "SignTranslationDatasetCreator",
    "SignTranslationDatasetItem",
]
