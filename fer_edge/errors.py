"""The one error type the CLI turns into a one-line message and a non-zero exit."""

import signal

EXIT_FAILURE = 1  # the job could not be done (bad model, unreadable camera, --strict with failures)
EXIT_USAGE = 2  # the command line asked for something impossible (missing path, empty folder, bad option)


class FerEdgeError(Exception):
    """A problem with the user's input (file, model, camera, data), explained in plain words."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE):
        super().__init__(message)
        self.exit_code = exit_code


class UsageError(FerEdgeError):
    def __init__(self, message: str):
        super().__init__(message, EXIT_USAGE)


class ModelError(FerEdgeError):
    """The model itself is unusable (its output is not probabilities, onnxruntime cannot run it): no file
    would fare better, so a batch run stops instead of writing an error row for every file."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP: a service manager, `kill`, or a closed terminal. Raised where Ctrl-C would be, so
    every command ends the same way: files closed, videos playable, summaries printed."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
