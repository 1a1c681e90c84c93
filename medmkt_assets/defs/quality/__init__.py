"""Quality stage: Great Expectations gates on staged and feature tables."""
