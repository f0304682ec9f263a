"""Policies: who writes the tokens (API models, local models, replays)."""
