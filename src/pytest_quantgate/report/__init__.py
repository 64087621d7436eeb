"""Views of the result records: diagnosis text, terminal table, JSON report."""
