"""Jobs, schedules and sensors: how medmkt refreshes itself."""
jobs: list = []
schedules: list = []
sensors: list = []
