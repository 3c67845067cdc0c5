"""ringpipe for Python: faster drop-ins for ``multiprocessing.Pipe()`` and
``multiprocessing.Queue``.

Switch with one import::

    import ringpipe
    a, b = ringpipe.Pipe()            # instead of multiprocessing.Pipe()
    q = ringpipe.Queue()              # instead of multiprocessing.Queue()

Messages travel through a shared-memory ring (libringpipe, a C library
with the semantics of Unix pipes) instead of a kernel pipe or socket.  The
connections have the whole API of
:class:`multiprocessing.connection.Connection` and work in
:func:`multiprocessing.connection.wait`; connections and queues can be
handed to :class:`multiprocessing.Process` under the fork, spawn and
forkserver start methods.  ``python -m ringpipe.bench`` compares them with
multiprocessing's.
"""

from multiprocessing import BufferTooShort
from queue import Empty, Full

from .connection import Connection, Pipe, PIPE_CAPACITY
from .queues import Queue, QUEUE_CAPACITY

__all__ = ['Pipe', 'Queue', 'Connection', 'BufferTooShort', 'Empty', 'Full',
           'PIPE_CAPACITY', 'QUEUE_CAPACITY']

__version__ = '0.1.0'
