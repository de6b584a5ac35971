"""pytest plugin for tests/peer/docker-py.sh: docker-py's conftest turns every warning into an
error, and Debian's setuptools warns (DeprecationWarning, distutils' version classes) whenever a
client is made, so every test would fail on either daemon. Keep DeprecationWarning a warning."""
import warnings

_simplefilter = warnings.simplefilter


def _simplefilter_keeping_deprecations(action, *args, **kwargs):
    _simplefilter(action, *args, **kwargs)
    if action == 'error':
        _simplefilter('ignore', DeprecationWarning)


warnings.simplefilter = _simplefilter_keeping_deprecations
