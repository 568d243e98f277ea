"""Training and scoring entry points."""
