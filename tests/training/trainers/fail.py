"""A trainer that fails the way a real bug does."""

raise ValueError("labels column 'species_typo' not found")
