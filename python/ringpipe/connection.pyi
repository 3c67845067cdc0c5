from types import TracebackType
from typing import Any, Callable, List, Optional, Tuple, Type

from ._ringpipe import _Connection

PIPE_CAPACITY: int

class Connection(_Connection):
    """One end of a ringpipe message pipe; the API of
    multiprocessing.connection.Connection."""
    def __enter__(self) -> Connection: ...
    def __exit__(self, exc_type: Optional[Type[BaseException]],
                 exc_value: Optional[BaseException],
                 exc_tb: Optional[TracebackType]) -> None: ...

def Pipe(duplex: bool = ..., *, capacity: Optional[int] = ...) -> Tuple[Connection, Connection]: ...

_EndSpec = Optional[Tuple[str, str, List[Any]]]

def reduce_connection(conn: Connection) -> Tuple[Callable[..., Connection],
                                                 Tuple[_EndSpec, _EndSpec, bool, bool]]: ...
def rebuild_connection(rspec: _EndSpec, wspec: _EndSpec, readable: bool,
                       writable: bool) -> Connection: ...
