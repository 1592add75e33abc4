#!/usr/bin/env bash
# FLa-LLM on RWTH-PHOENIX-Weather 2014 T: the shared recipe examples/recipe.sh (DATA_ROOT, MBART_DIR, RESNET... are described there).
exec bash "$(dirname "$0")/../recipe.sh" phoenix14t
