"""`kit init`: the name-key change added to a team's own supabase/migrations, with its extras."""
