"""Migration files and their history: where the files come from, the history table, the lint, the push plan."""
