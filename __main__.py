"""The edumatrix-db Pulumi program: read the stack's settings once, declare the platform, export outputs.

This is the only module that touches Pulumi's configuration; everything below receives typed settings.
"""

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env

from components.platform import declare_platform
from config.errors import ConfigError
from config.loader import settings_from_config

stack = pulumi.get_stack()
try:
    settings = settings_from_config(
        {**get_config_env(), **CONFIG.get()}, stack=stack, source=f"stacks/Pulumi.{stack}.yaml"
    )
except ConfigError as error:
    # A config mistake is reported as a message, not a traceback, before any resource is declared.
    raise pulumi.RunError(str(error)) from None

for output_name, value in declare_platform(settings).items():
    pulumi.export(output_name, value)
