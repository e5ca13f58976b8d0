"""Operational tools: audit, metrics collection, extraction, restore, migrations and GDPR requests (added by the
issues that need them), and the ops runner that runs the scheduled and event-triggered ones inside the VPC
(`runner.py`, packaged by `runner_package.py`). Commands that compare data (extraction verify, restore
verify) share one verification core, `verify.py`; long operations show Rich progress and end with a summary a
person can read.
"""
