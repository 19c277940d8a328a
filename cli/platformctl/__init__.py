"""platformctl: the admin CLI of the plugin platform (``platformctl --help``).

Plugin commands run under ``platformctl <plugin> ...``; their ``typer.Context.obj`` is the
booted :class:`platform_core.context.PlatformContext`, and :func:`platformctl.runtime.run`
runs a coroutine against it and closes the database afterwards.
"""

__version__ = "0.1.0"
