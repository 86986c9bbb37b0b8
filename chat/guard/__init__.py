"""Keeping a figure in role: input guard, policy, output guard, model judge, scripted model (docs/guard.md)."""
