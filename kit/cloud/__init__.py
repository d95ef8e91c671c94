"""Supabase's platform: the Management API client and preview branches."""
