"""Sharing a conversation on purpose: read-only links to one frozen branch, and the 长卷 image."""
