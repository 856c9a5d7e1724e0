"""The shared sharding workload on SQLAlchemy's horizontal_shard extension (S SQLite files).

Run by benchmarks/src/systems/sqlalchemy.ts: `python3 horizontal_shard_bench.py WORKLOAD.json`. The workload file
holds the exact data and random draws the Node side generated, so both sides do the same work. Prints one JSON
object on stdout; {"available": false, "reason": ...} when SQLAlchemy cannot be imported.
"""
import json
import math
import os
import resource
import sys
import time


def murmur3_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86_32, as npm murmurhash's v3 (and mmh3.hash(..., signed=False))."""
    c1, c2 = 0xCC9E2D51, 0x1B873593
    h = seed & 0xFFFFFFFF
    n = len(data)
    end = n - n % 4
    for i in range(0, end, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * c1) & 0xFFFFFFFF
        k = ((k << 15) | (k >> 17)) & 0xFFFFFFFF
        k = (k * c2) & 0xFFFFFFFF
        h ^= k
        h = ((h << 13) | (h >> 19)) & 0xFFFFFFFF
        h = (h * 5 + 0xE6546B64) & 0xFFFFFFFF
    k = 0
    tail = n & 3
    if tail == 3:
        k ^= data[end + 2] << 16
    if tail >= 2:
        k ^= data[end + 1] << 8
    if tail >= 1:
        k ^= data[end]
        k = (k * c1) & 0xFFFFFFFF
        k = ((k << 15) | (k >> 17)) & 0xFFFFFFFF
        k = (k * c2) & 0xFFFFFFFF
        h ^= k
    h ^= n
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    h ^= h >> 16
    return h


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    rank = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[rank]


def timed(n, units, op):
    lat = []
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        op(i)
        lat.append((time.perf_counter() - t0) * 1000)
    seconds = time.perf_counter() - start
    lat.sort()
    return {"per_s": units / seconds if n else None, "p50_ms": percentile(lat, 0.5), "p99_ms": percentile(lat, 0.99),
            "seconds": seconds}


def main(path):
    try:
        import sqlalchemy
        from sqlalchemy import Column, Integer, String, create_engine, func, select
        from sqlalchemy.ext.horizontal_shard import ShardedSession
        from sqlalchemy.orm import declarative_base, sessionmaker
        from sqlalchemy.pool import QueuePool
    except ImportError as e:  # python3-sqlalchemy not installed
        print(json.dumps({"available": False, "reason": f"cannot import SQLAlchemy with {sys.executable}: {e}"}))
        return
    major, minor = (int(x) for x in sqlalchemy.__version__.split(".")[:2])
    if (major, minor) < (1, 4):
        print(json.dumps({"available": False, "reason": f"SQLAlchemy {sqlalchemy.__version__} < 1.4"}))
        return

    with open(path) as f:
        w = json.load(f)
    S = w["shards"]
    for probe_id, probe_shard in w["hash_probe"]:
        got = murmur3_32(str(probe_id).encode()) % S
        if got != probe_shard:
            raise SystemExit(f"murmur3 mismatch for id {probe_id}: python {got}, npm murmurhash v3 {probe_shard}")

    Base = declarative_base()

    class Item(Base):
        __tablename__ = "item"
        id = Column(Integer, primary_key=True, autoincrement=False)
        name = Column(String(32), nullable=False)
        score = Column(Integer, nullable=False, index=True)

    names = [f"s{i}" for i in range(S)]
    # QueuePool (SQLAlchemy 2.0's default for SQLite files): 1.4's NullPool would reconnect for every session.
    engines = {n: create_engine(f"sqlite:///{os.path.join(w['dir'], n + '.db')}", poolclass=QueuePool) for n in names}
    for engine in engines.values():
        Base.metadata.create_all(engine)

    def shard_of(ident):
        return names[murmur3_32(str(ident).encode()) % S]

    Session = sessionmaker(
        class_=ShardedSession,
        shards=engines,
        shard_chooser=lambda mapper, instance, clause=None: shard_of(instance.id),
        id_chooser=lambda query, ident: [shard_of(ident[0])],
        execute_chooser=lambda ctx: names,
    )

    scores = w["scores"]
    rows = len(scores)
    batch = w["batch"]
    page = w["page"]
    result = {"available": True, "version": sqlalchemy.__version__, "python": sys.version.split()[0], "phases": {}}

    def write(i):
        with Session() as session:
            session.add_all(Item(id=j, name=f"name-{j:08d}", score=scores[j]) for j in range(i * batch, min(rows, (i + 1) * batch)))
            session.commit()

    result["phases"]["W"] = timed(-(-rows // batch), rows, write)

    if "P" in w["phases"]:
        ids = w["point_ids"]
        state = {}

        def lookup(i):
            if i % w["lookups_per_fork"] == 0:
                if "session" in state:
                    state["session"].close()
                state["session"] = Session()
            item = state["session"].get(Item, ids[i])
            if item is None or item.id != ids[i] or item.score != scores[ids[i]]:
                raise SystemExit(f"lookup of id {ids[i]} did not find its row")

        result["phases"]["P"] = timed(len(ids), len(ids), lookup)
        if "session" in state:
            state["session"].close()

    if "F" in w["phases"]:
        xs = w["fanout_xs"]
        answers = []

        def fanout(i):
            # horizontal_shard concatenates each shard's top page: sorting and cutting to the global page is ours.
            with Session() as session:
                items = session.execute(
                    select(Item).where(Item.score >= xs[i]).order_by(Item.score.desc()).limit(page)
                ).scalars().all()
                items.sort(key=lambda it: it.score, reverse=True)
                answers.append([[it.id, it.name, it.score] for it in items[:page]])

        result["phases"]["F"] = timed(len(xs), len(xs), fanout)
        result["F_answers"] = answers

    if "C" in w["phases"]:
        xs = w["count_xs"]
        counts = []

        def count(i):
            with Session() as session:
                # One count per shard, merged into one result by horizontal_shard; summed here.
                counts.append(sum(session.execute(select(func.count()).select_from(Item).where(Item.score >= xs[i])).scalars()))

        result["phases"]["C"] = timed(len(xs), len(xs), count)
        result["C_answers"] = counts

    for engine in engines.values():
        engine.dispose()
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
