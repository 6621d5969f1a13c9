"""The ``kapacity`` command line."""
