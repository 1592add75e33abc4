"""``flallm-experiment``: the paper's ablation tables from one command (rows, shared steps, checkpoint facts, table)."""
