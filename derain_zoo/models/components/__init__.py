"""Blocks used by several networks of the zoo."""
