"""`kit deploy`: the runbook, its steps and its report."""
