"""Scriptable fake engines, registered as plug-ins for the test suite only.

The directory above this package holds a ``.dist-info`` whose entry points register the
``fake`` STT engine; putting that directory on ``PYTHONPATH`` (``tests.helpers.fake``
does it for a ``theo serve`` subprocess) makes ``engine: fake`` manifests loadable.
"""
