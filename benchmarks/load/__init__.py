"""Load and fault campaigns against the real stack (issue 14)."""
