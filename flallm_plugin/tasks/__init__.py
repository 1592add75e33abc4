from flallm_plugin.tasks.sign_translation import SignTranslationConfig, SignTranslationTask  # noqa: F401
