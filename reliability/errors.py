"""The two kinds of failure the CLI distinguishes (both exit 2)."""

from __future__ import annotations


class InputError(Exception):
    """Bad user input: reported as one line naming the file and field, exit code 2.

    `location` is what the user must look at: "slos/api.yaml: slos[0].objective".
    """

    def __init__(self, location: str, message: str) -> None:
        super().__init__(f"{location}: {message}" if location else message)
        self.location = location
        self.message = message


class HarnessError(Exception):
    """The harness itself could not do its job (a tool missing, a process that would not start)."""
