"""labkit: what the PMLE labs share.

    import labkit
    env = labkit.start()   # local by default; LAB_BACKEND=gcp uses your project
"""

from labkit.env import ConfigError, Env, start

__all__ = ["ConfigError", "Env", "start"]
