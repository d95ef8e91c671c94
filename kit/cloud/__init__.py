"""Supabase's platform: the Management API client, preview branches, and which project a URL names."""
