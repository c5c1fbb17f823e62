"""Listed before a user's own locustfile (`-f this,theirs`): attaches our shape and stats writer.

Locust takes the first shape class it finds, so ours wins over one in the user's file.
"""

from reliability.load.plugin import ReliabilityShape  # noqa: F401
