"""The sensitive-data policy at work: what was withheld, and the check that nothing leaked."""
