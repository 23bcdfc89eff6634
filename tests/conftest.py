"""Fixtures shared by the test files: ``root``, a project root for in-process training and test runs."""
import logging
import sys

import pytest


def _reset_basicsr_logger():
    """Forget basicsr's root logger, so that the next run sets it up (and its log file) afresh."""
    from basicsr.utils import logger
    logger.initialized_logger.pop('basicsr', None)
    for handler in list(logging.getLogger('basicsr').handlers):
        logging.getLogger('basicsr').removeHandler(handler)
        handler.close()


@pytest.fixture
def root(tmp_path, monkeypatch):
    """A project root for in-process runs; the working directory and ``sys.argv`` are restored afterwards."""
    monkeypatch.setenv('MRNET_ROOT', str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, 'argv', list(sys.argv))
    _reset_basicsr_logger()
    yield tmp_path
    _reset_basicsr_logger()
