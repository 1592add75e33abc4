"""The MLP adapters of the paper (VL-Adapter in stage 1, LLM-Adapter in stage 2)."""
import torch
import torch.nn as nn


class MLPAdapter(nn.Module):
    """MLP with one hidden layer: Linear -> ReLU -> dropout -> Linear."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, out_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.fc2(self.dropout(torch.relu(self.fc1(x))))


def num_params(modules) -> int:
    """Parameters of one or several modules, shared parameters counted once."""
    if isinstance(modules, nn.Module):
        modules = [modules]
    seen, n = set(), 0
    for m in modules:
        for p in m.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                n += p.numel()
    return n
