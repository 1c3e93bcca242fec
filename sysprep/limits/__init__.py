"""Every limit on thread count, in the order check reports them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sysprep.limits.cgroup import PidsMax
from sysprep.limits.memory import AddressSpace
from sysprep.limits.memory import CommitLimit
from sysprep.limits.memory import MemAvailable
from sysprep.limits.memory import MemoryCgroup
from sysprep.limits.rlimit import AddressSpace as RlimitAS
from sysprep.limits.rlimit import Data
from sysprep.limits.rlimit import Nproc
from sysprep.limits.rlimit import Stack
from sysprep.limits.sysctl import MaxMapCount
from sysprep.limits.sysctl import PidMax
from sysprep.limits.sysctl import ThreadsMax

if TYPE_CHECKING:
    from sysprep.limits.base import Limit

ALL_LIMITS: tuple[Limit, ...] = (
    ThreadsMax(),
    PidMax(),
    MaxMapCount(),
    Nproc(),
    PidsMax(),
    Stack(),
    RlimitAS(),
    Data(),
    MemAvailable(),
    MemoryCgroup(),
    CommitLimit(),
    AddressSpace(),
)
