"""Lazy access to TensorFlow and tf_keras (importing TensorFlow takes seconds).

The first import runs with the process's stderr (fd 2) captured: TensorFlow's C++ layer
prints start-up notes (oneDNN, CUDA drivers) there before its log level applies. The
capture is replayed when the import fails, so no real error is hidden.
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
from types import ModuleType

os.environ["TF_USE_LEGACY_KERAS"] = "1"


def _quiet_import_tensorflow() -> ModuleType:
    if "tensorflow" in sys.modules or os.environ.get("EDGEKIT_TF_VERBOSE"):
        import tensorflow

        return tensorflow
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            sys.stderr.write(capture.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    # Python-side TensorFlow warnings (e.g. tfmot's "Gradients do not exist" for the
    # frozen original kernels of a clustered layer) are noise for edgekit's users
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    return tensorflow


def tf() -> ModuleType:
    return _quiet_import_tensorflow()


def keras() -> ModuleType:
    _quiet_import_tensorflow()
    import tf_keras

    return tf_keras
