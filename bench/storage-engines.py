#!/usr/bin/env python3
"""Baselines for the storage engine decision (docs/decisions/0000): durable write rates of
SQLite (WAL, synchronous=FULL, one transaction per write) and of a bare write+fsync loop on
the same disk. Usage: bench/storage-engines.py [DIR] [SECONDS]"""
import os, sqlite3, sys, time

base = sys.argv[1] if len(sys.argv) > 1 else "/var/tmp/coffer-fsync-bench"
secs = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
os.makedirs(base, exist_ok=True)

path = os.path.join(base, "sqlite.db")
for suffix in ("", "-wal", "-shm"):
    try: os.remove(path + suffix)
    except FileNotFoundError: pass
db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=FULL")
db.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB)")
v = b"\x5a" * 256
n = 0; end = time.time() + secs; start = time.time()
while time.time() < end:
    db.execute("BEGIN"); db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (f"bench/{n}", v)); db.execute("COMMIT"); n += 1
el = time.time() - start
print(f"sqlite WAL synchronous=FULL, 1 writer: {n} commits in {el:.1f}s = {n/el:.0f} commits/s")
db.close()

fpath = os.path.join(base, "raw.log")
fd = os.open(fpath, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
n = 0; end = time.time() + secs; start = time.time()
while time.time() < end:
    os.write(fd, v); os.fsync(fd); n += 1
el = time.time() - start
print(f"raw append + fsync, 1 writer: {n} in {el:.1f}s = {n/el:.0f} fsyncs/s (the disk's ceiling)")
os.close(fd); os.remove(fpath)
