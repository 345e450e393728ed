"""bench_collab.py --what-if persistent-db: the shipped settings, but the server
keeps its database connection (CONN_MAX_AGE=None) instead of opening one per
database call. Measures a suggested change; never used by Roomtone itself."""

from studio.settings import *  # noqa: F403
from studio.settings import DATABASES

DATABASES["default"]["CONN_MAX_AGE"] = None
