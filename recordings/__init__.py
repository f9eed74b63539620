"""Recordings: capture control, encryption at rest, retention, audited access.

Built so far: :mod:`recordings.crypto`, envelope encryption with AES-256-GCM (a fresh data key
per recording, wrapped by the operator's master key), which makes retention a matter of
destroying one wrapped key (crypto-erase). Capture (consent prompt, MixMonitor from bridge to
hangup, pause during card digits), pydub post-processing, the retention policy with legal
hold and role-based audited access are on the roadmap (see README).
"""
