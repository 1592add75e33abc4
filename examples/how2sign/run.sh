#!/usr/bin/env bash
# FLa-LLM on How2Sign: the shared recipe examples/recipe.sh (DATA_ROOT, MBART_DIR, RESNET... are described there).
exec bash "$(dirname "$0")/../recipe.sh" how2sign
