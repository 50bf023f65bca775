"""bisector: track test outcomes per git commit and find the commit that broke a test.

Importing this package must stay cheap: the pytest plugin is loaded in every session,
tracked or not, so nothing heavy (git, SQLAlchemy, rich) is imported here.
"""

# The one place the version is written: pyproject.toml reads it (dynamic = ["version"]).
__version__ = "0.1.0"
