"""Theo OpenVoice: a local voice runtime serving speech models behind an OpenAI-compatible API."""

__version__ = "0.1.0"
