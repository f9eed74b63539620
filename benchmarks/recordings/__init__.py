"""Recordings benchmark: post-processing + encryption, decrypt-to-first-byte, retention pass."""
