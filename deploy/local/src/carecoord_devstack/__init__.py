"""Local infrastructure without docker, for `make run` and the test suite."""
