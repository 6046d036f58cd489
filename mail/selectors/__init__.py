"""Mail's reads, one topic module each."""
