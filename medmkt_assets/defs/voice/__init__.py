"""Patient-voice stage: what survey comments, scores and search queries say, without who said it."""
