"""One Python distex benchmark in a fresh process, for bench/run.ts.

Starts a fresh distex.Pool, times the case and prints one JSON line
({"case": ..., "value": ..., ...}) as its last line on stdout: the same
cases, counts and units as the `cold-*`, `ready-*` and `curve-*` cases of
bench/_pool_case.ts, so run.ts can put the two side by side.

    python3 bench/_distex_case.py <case> [--quick]

Needs distex (erdewit/distex) and eventkit importable and `distex_proc` on
PATH (distex starts its workers with it). The pool process runs on uvloop
when it is installed (the workers do by default), distex's fastest setup.

Cases ("fresh pool, one map, then exit": nothing is warmed up):
- cold-map-100k-c1, cold-map-100k-c100, cold-map-1M-c100: Pool(2),
  `map_async(f, range(n), chunksize=K)` with f = x + 2. Tasks per second.
- cold-run-100k: 100k concurrent `run_async(f, i)` through
  `asyncio.gather`. Tasks per second.
- cold-bytes-len: 200 distinct 1 MiB bytes objects through
  `map_async(len, ...)`. Payload bytes per second (one way).
- ready-4, ready-32: `Pool(n)` until `create()` returns (all workers
  connected). Milliseconds.
- curve-100k-c100: five successive 100k maps with chunksize 100 on one
  pool; the value is the first map's milliseconds, detail.mapsMs has all.
"""

import asyncio
import json
import sys
import time

try:
    import uvloop
except ImportError:  # distex runs without it, just slower
    uvloop = None

import distex

MIB = 1 << 20


def add2(x):
    return x + 2


def fail(message):
    raise SystemExit(message)


async def new_pool(workers):
    pool = distex.Pool(workers, lazy_create=True)
    await pool.create()
    return pool


async def map_sum(pool, fn, items, chunksize):
    total = 0
    async for y in pool.map_async(fn, items, chunksize=chunksize):
        total += y
    return total


async def cold_map(name, quick):
    parts = name.split("-")  # cold-map-100k-c100
    n = 1_000_000 if parts[2] == "1M" else 100_000
    if quick:
        n //= 10
    chunksize = int(parts[3][1:])
    pool = await new_pool(2)
    try:
        c0 = time.thread_time()
        t0 = time.perf_counter()
        total = await map_sum(pool, add2, range(n), chunksize)
        ms = (time.perf_counter() - t0) * 1000
        cpu_ms = (time.thread_time() - c0) * 1000
    finally:
        await pool.shutdown_async()
    if total != n * (n - 1) // 2 + 2 * n:
        fail(f"Sum is wrong: {total}")
    return n / (ms / 1000), "tasks/s", n, ms, {
        "chunkSize": chunksize, "cpuMs": cpu_ms}


async def cold_run(name, quick):
    n = 10_000 if quick else 100_000
    pool = await new_pool(2)
    try:
        c0 = time.thread_time()
        t0 = time.perf_counter()
        results = await asyncio.gather(
            *(pool.run_async(add2, i) for i in range(n)))
        ms = (time.perf_counter() - t0) * 1000
        cpu_ms = (time.thread_time() - c0) * 1000
    finally:
        await pool.shutdown_async()
    if sum(results) != n * (n - 1) // 2 + 2 * n:
        fail("Sum is wrong")
    return n / (ms / 1000), "tasks/s", n, ms, {
        "concurrent": n, "cpuMs": cpu_ms}


async def cold_bytes(name, quick):
    n = 40 if quick else 200
    items = [bytes([i & 0xFF]) * MIB for i in range(n)]
    pool = await new_pool(2)
    try:
        c0 = time.thread_time()
        t0 = time.perf_counter()
        total = await map_sum(pool, len, items, 1)
        ms = (time.perf_counter() - t0) * 1000
        cpu_ms = (time.thread_time() - c0) * 1000
    finally:
        await pool.shutdown_async()
    if total != n * MIB:
        fail(f"Counted {total} bytes")
    return total / (ms / 1000), "B/s", total, ms, {
        "items": n, "cpuMs": cpu_ms}


async def ready(name, quick):
    workers = int(name.split("-")[1])
    t0 = time.perf_counter()
    pool = await new_pool(workers)
    ms = (time.perf_counter() - t0) * 1000
    await pool.shutdown_async()
    return ms, "ms", workers, ms, {"workers": workers}


async def curve(name, quick):
    n = 10_000 if quick else 100_000
    pool = await new_pool(2)
    maps_ms = []
    cpu_ms = []
    try:
        for _ in range(5):
            c0 = time.thread_time()
            t0 = time.perf_counter()
            total = await map_sum(pool, add2, range(n), 100)
            maps_ms.append((time.perf_counter() - t0) * 1000)
            cpu_ms.append((time.thread_time() - c0) * 1000)
            if total != n * (n - 1) // 2 + 2 * n:
                fail(f"Sum is wrong: {total}")
    finally:
        await pool.shutdown_async()
    return maps_ms[0], "ms", n, maps_ms[0], {
        "mapsMs": maps_ms, "cpuMs": cpu_ms}


def case_fn(name):
    if name.startswith("cold-map-"):
        return cold_map
    if name == "cold-run-100k":
        return cold_run
    if name == "cold-bytes-len":
        return cold_bytes
    if name.startswith("ready-"):
        return ready
    if name.startswith("curve-"):
        return curve
    fail(f"Unknown case {name}")


def main():
    args = sys.argv[1:]
    quick = "--quick" in args
    names = [a for a in args if not a.startswith("--")]
    if len(names) != 1:
        fail("usage: _distex_case.py <case> [--quick]")
    name = names[0]
    if uvloop is not None:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        value, unit, count, ms, detail = loop.run_until_complete(
            case_fn(name)(name, quick))
    finally:
        loop.close()
    detail["uvloop"] = uvloop is not None
    detail["distex"] = distex.__version__
    print(json.dumps({
        "case": name, "value": value, "unit": unit, "count": count,
        "ms": ms, "detail": detail}))


if __name__ == "__main__":
    main()
