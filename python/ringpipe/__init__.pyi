from multiprocessing import BufferTooShort as BufferTooShort
from queue import Empty as Empty, Full as Full

from .connection import Connection as Connection, Pipe as Pipe, PIPE_CAPACITY as PIPE_CAPACITY
from .queues import Queue as Queue, QUEUE_CAPACITY as QUEUE_CAPACITY

__version__: str
__all__: list[str]
