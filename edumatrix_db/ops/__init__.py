"""Operational tools: the audit (`audit.py`), migrations, schema docs and health, and the ops runner that runs
the scheduled and event-triggered ones inside the VPC (`runner.py`, packaged by `runner_package.py`); metrics
collection, extraction, restore and GDPR requests next. Commands that compare data (extraction verify, restore
verify) share one verification core, `verify.py`; long operations show Rich progress and end with a summary a
person can read.
"""
