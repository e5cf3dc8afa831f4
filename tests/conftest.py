def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test (e.g. the 200 MB ingest); deselect with -m 'not slow'")
