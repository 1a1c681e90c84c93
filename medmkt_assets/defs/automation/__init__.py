"""Jobs, schedules and sensors: how medmkt refreshes itself."""
from medmkt_assets.defs.automation.jobs import jobs
from medmkt_assets.defs.automation.schedules import schedules
from medmkt_assets.defs.automation.sensors import sensors

__all__ = ["jobs", "schedules", "sensors"]
