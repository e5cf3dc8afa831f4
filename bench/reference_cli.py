"""The command line the two references share (bench/limit.py, bench/peer.py): compute the
three reaction-rate marts from a home's events, time it, and write each as
<out>/<mart>.parquet for bench/run.py to compare with the warehouse."""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

import pandas as pd


def main(description: str, name: str, where: str, compute: Callable[[Path], dict[str, pd.DataFrame]],
         argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--home", required=True)
    p.add_argument("--out", help="folder for <mart>.parquet")
    args = p.parse_args(argv)
    t = time.perf_counter()
    marts = compute(Path(args.home))
    seconds = time.perf_counter() - t
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        for mart, df in marts.items():
            df.to_parquet(Path(args.out) / f"{mart}.parquet", index=False)
    print(f"{name}: {seconds:.3f} s {where}, " + ", ".join(f"{n} {len(d)} rows" for n, d in marts.items()))
    return 0
