"""The insight app: the pipeline's published results for marketing and patient-service managers,
in English and Simplified Chinese, read from the read-only snapshot (`python -m medmkt_assets.app`)."""
