"""ringpipe connections: a drop-in for ``multiprocessing.Pipe()``.

``Pipe(duplex=True)`` returns two :class:`Connection` objects with the API
of :class:`multiprocessing.connection.Connection`; messages travel through
a shared-memory ring (libringpipe) instead of a kernel pipe or socket.

Connections can be handed to child processes under the fork, spawn and
forkserver start methods, and sent over other connections or queues, like
multiprocessing's: :func:`reduce_connection` is registered with
``multiprocessing.reduction`` and duplicates every descriptor of the
connection's ends with ``multiprocessing.reduction.DupFd``; the child
rebuilds the ends with ``rp_import``.
"""

import os
from multiprocessing import reduction as _reduction

from . import _ringpipe

__all__ = ['Pipe', 'Connection', 'reduce_connection', 'rebuild_connection']

#: Ring capacity of each direction of a Pipe() when none is given (bytes).
PIPE_CAPACITY = 1 << 18


class Connection(_ringpipe._Connection):
    """One end of a ringpipe message pipe.

    Methods and attributes are those of
    :class:`multiprocessing.connection.Connection`: ``send``, ``recv``,
    ``send_bytes``, ``recv_bytes``, ``recv_bytes_into``, ``poll``,
    ``fileno``, ``close``, ``closed``, ``readable``, ``writable``, and the
    context manager.  Made by :func:`Pipe`, not directly.
    """

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, exc_tb):
        self.close()

    def __repr__(self):
        if self.closed:
            state = 'closed'
        else:
            state = 'fd=%d' % self.fileno()
        mode = ('r' if self.readable else '') + ('w' if self.writable else '')
        return '<%s.%s %s %s>' % (type(self).__module__,
                                  type(self).__qualname__, mode or '-', state)


def Pipe(duplex=True, *, capacity=None):
    """Return a pair ``(conn1, conn2)`` of connected :class:`Connection`.

    As :func:`multiprocessing.Pipe`: if *duplex* is true both are readable
    and writable; otherwise ``conn1`` only receives and ``conn2`` only
    sends.  *capacity* is the size in bytes of each direction's ring
    (rounded up to whole pages; default :data:`PIPE_CAPACITY`).  Messages
    of any size pass through any ring: larger ones stream through it.
    Each direction holds 9 file descriptors (a duplex pair 18, against 2
    for multiprocessing's): see the package README.
    """
    if capacity is None:
        capacity = PIPE_CAPACITY
    elif not isinstance(capacity, int) or isinstance(capacity, bool):
        raise TypeError('capacity must be an int (bytes), not %s'
                        % type(capacity).__name__)
    return Connection._pipe(bool(duplex), capacity)


# ---------------------------------------------------------------------------
# Pickling for child processes (and for sending over connections/queues)

def _dup_end(token):
    # rp_export(3) token: "rp1:<r|w>:<shm>:<bell>:<wake>:<gate>:<drain>",
    # naming the end's descriptors (-1: none, as drain for a write end).
    # Every descriptor is duplicated for the receiving process; the token
    # is rebuilt there with the new numbers.
    if token is None:
        return None
    parts = token.split(':')
    if len(parts) < 3 or parts[0] != 'rp1' or parts[1] not in ('r', 'w'):
        raise ValueError('unexpected ringpipe token %r' % token)
    fields = []
    for p in parts[2:]:
        fd = int(p)
        fields.append(_reduction.DupFd(fd) if fd >= 0 else fd)
    return parts[0], parts[1], fields


def _rebuild_end(spec):
    if spec is None:
        return None
    version, role, fields = spec
    out = []
    for f in fields:
        if isinstance(f, int):
            out.append(f)
        else:
            fd = f.detach()
            # PEP 446: the end's descriptors are not inherited by exec.
            os.set_inheritable(fd, False)
            out.append(fd)
    return ':'.join([version, role] + [str(fd) for fd in out])


def reduce_connection(conn):
    """Reducer for :class:`Connection` (registered with
    multiprocessing.reduction): each descriptor of each end is duplicated
    for the receiving process with ``reduction.DupFd``."""
    rtok, wtok = conn._export()
    return rebuild_connection, (_dup_end(rtok), _dup_end(wtok),
                                conn.readable, conn.writable)


def rebuild_connection(rspec, wspec, readable, writable):
    """Inverse of :func:`reduce_connection`, run in the receiving process."""
    rtok = _rebuild_end(rspec)
    wtok = _rebuild_end(wspec)
    return Connection._import(rtok, wtok, readable, writable)


_reduction.register(Connection, reduce_connection)
