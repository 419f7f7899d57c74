"""Provider plug-ins for the tests, loaded through a test-only entry-point fixture (``conftest.plugins``)."""
