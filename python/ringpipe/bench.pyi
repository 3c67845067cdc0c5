from typing import List, Optional, Tuple

PAIRS: List[Tuple[str, str, str, str]]

def measure(mech: str, test: str, quick: bool,
            scale: Optional[float] = ...) -> Tuple[float, str, int]: ...
def main(argv: Optional[List[str]] = ...) -> int: ...
