"""Provider clients: plain Python (no Django imports), httpx for every call."""
