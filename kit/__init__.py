"""Supabase deployment kit: ships the LLM name-key migration safely."""

__version__ = "0.1.0"
