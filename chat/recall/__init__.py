"""Memory and recall: what a figure remembers about its user, and how it is found again (docs/memory.md)."""
