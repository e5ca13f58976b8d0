"""Operational tools, added by the next issues: audit, metrics collection, extraction, restore, migrations
and GDPR requests. Commands that compare data (extraction verify, restore verify) share one verification
core, `verify.py`; long operations show Rich progress and end with a summary a person can read.
"""
