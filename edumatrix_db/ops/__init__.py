"""Operational tools: the audit (`audit.py`) now; metrics collection, extraction, restore, migrations and
GDPR requests next. Commands that compare data (extraction verify, restore verify) share one verification
core here; long operations show Rich progress and end with a summary a person can read.
"""
