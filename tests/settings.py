"""Settings for the test run: the real settings, with jobs run synchronously on
commit (so tests assert on results without waiting) and a throwaway var/ dir.
The worker-thread backend has tests of its own, and the browser tests run the
real server with it."""

import os
import tempfile

os.environ.setdefault("TASK_BACKEND", "immediate")
os.environ.setdefault("ROOMTONE_VAR_DIR", tempfile.mkdtemp(prefix="roomtone-test-var-"))

from studio.settings import *  # noqa: E402,F403
