"""labkit: what the PMLE labs share."""
