"""The floor for a Python probe: hold.c's loop through ctypes, and nothing else.

No options, no memory guard, no measurement: pthread_create N threads blocked in sem_wait,
post the semaphore N times, join them all, print the phases as hold.c does. Whatever the
threads probe costs beyond this is the probe's own; what this costs beyond hold.c is the
price of ctypes (bench/threads_vs_c.py runs all three). Run: python3 -S hold_ctypes.py 30000
"""

from __future__ import annotations

import collections
import ctypes
import itertools
import sys
import time

count = int(sys.argv[1]) if len(sys.argv) > 1 else 30_000
libc = ctypes.PyDLL(None)  # keeps the GIL, as the probe's per-thread calls do
create = libc.pthread_create
create.argtypes = [ctypes.c_void_p] * 4
join = libc.pthread_join
join.argtypes = [ctypes.c_ulong, ctypes.c_void_p]
post = libc.sem_post
post.argtypes = [ctypes.c_void_p]
semaphore = ctypes.create_string_buffer(128)
libc.sem_init(semaphore, 0, 0)
tids = (ctypes.c_ulong * count)()
base, width = ctypes.addressof(tids), ctypes.sizeof(ctypes.c_ulong)
start = ctypes.cast(libc.sem_wait, ctypes.c_void_p).value
argument = ctypes.addressof(semaphore)
started = time.monotonic()
created = 0
while created < count and create(base + created * width, None, start, argument) == 0:
    created += 1
released = time.monotonic()
collections.deque(map(post, itertools.repeat(argument, created)), maxlen=0)
collections.deque(map(join, tids[:created], itertools.repeat(None, created)), maxlen=0)
joined = time.monotonic()
print(
    f'{{"held": {created}, "create_seconds": {released - started:.6f},'
    f' "join_seconds": {joined - released:.6f}}}'
)
sys.exit(0 if created == count else 1)
