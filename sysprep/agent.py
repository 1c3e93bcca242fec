"""The node agent: check on an interval, report through what the cluster runs, apply once.

A DaemonSet runs `sysprep agent`. Each cycle it checks the node (with the profile, when
given), rewrites its reports — node-problem-detector's line, Node Feature Discovery's
feature file, node_exporter's textfile — and logs one line. With --apply it applies the
profile at most once per change of the profile's bytes (a ConfigMap's update), keeping in
the state directory what it did, so a restarted pod does not apply again.

SIGTERM or SIGINT ends it cleanly after the cycle under way, and nothing is reverted: a
rollout or a node drain must never lower limits under running workloads. Reverting is an
explicit `sysprep revert` (the revert Job). Only an apply still under way when the signal
comes is rolled back, as apply always does.
"""

from __future__ import annotations

import hashlib
import json
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sysprep.durable import write_atomic
from sysprep.errors import ConflictError
from sysprep.errors import StoppedError
from sysprep.errors import SysprepError
from sysprep.render.node import NFD_FILE
from sysprep.render.node import NPD_UNKNOWN
from sysprep.render.node import nfd_text
from sysprep.render.node import npd_error
from sysprep.render.node import npd_line
from sysprep.render.outfile import OutputFile
from sysprep.render.prometheus import TEXTFILE
from sysprep.render.prometheus import check_text

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from types import FrameType

    from sysprep.host import Host
    from sysprep.report import CheckResult

_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
RECORD = "agent.json"  # in the state directory: the profile applied, by the digest of its bytes
NPD_FILE = OutputFile(
    "--npd", "name a file the node-problem-detector plugin reads (deploy/node-problem-detector)"
)


@dataclass(frozen=True)
class AgentOptions:
    """What the agent does each cycle, from the command line."""

    interval: float  # seconds between two cycles
    profile: str | None = None
    apply: bool = False  # apply the profile once per change of it
    persist: bool = False
    probes: bool = True
    threads: int | None = None
    stack: int | None = None
    npd: Path | None = None  # "STATUS LINE" for node-problem-detector's plugin
    nfd: Path | None = None
    prometheus: Path | None = None


class Agent:
    """One node agent: its host, its state directory, its options and its log."""

    def __init__(
        self, host: Host, state_dir: Path, options: AgentOptions, log: Callable[[str], None]
    ) -> None:
        self.host = host
        self.state_dir = state_dir
        self.options = options
        self._log = log
        self.stopped_by: signal.Signals | None = None

    def run(self, cycles: int | None = None) -> None:
        """Cycle until SIGTERM or SIGINT (or *cycles* cycles); nothing is reverted then.

        The signals are held while a cycle runs, so none cuts a report short, and waited
        for between cycles; they reach an apply under way, which rolls itself back.
        """
        for path, output in self._outputs():
            if path is not None:
                output.check(path)  # refused before the first cycle, not after
        previous = {signum: signal.signal(signum, self._note) for signum in _STOP_SIGNALS}
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            done = 0
            while self.stopped_by is None:
                self.cycle()
                done += 1
                if cycles is not None and done >= cycles:
                    return
                if self.stopped_by is None:
                    arrived = signal.sigtimedwait(_STOP_SIGNALS, self.options.interval)
                    if arrived is not None:
                        self.stopped_by = signal.Signals(arrived.si_signo)
            self.log(f"stopping on {self.stopped_by.name}; nothing is reverted")
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def cycle(self) -> CheckResult | None:
        """Apply if the profile changed (with --apply), then check and report; log each."""
        if self.options.apply and self.options.profile is not None:
            self._apply_once(self.options.profile)
        try:
            result = self._check()
        except SysprepError as error:
            self.log(f"check: {npd_error(error)}")
            self._write_npd(NPD_UNKNOWN, npd_error(error))
            return None
        line, status = npd_line(result)
        self.log(f"check: {line}")
        self._report(result, line, status)
        return result

    def log(self, message: str) -> None:
        """One line, stamped with the UTC time."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._log(f"{stamp} {' '.join(message.splitlines())}")

    def _check(self) -> CheckResult:
        from sysprep.report import run_check

        return run_check(
            self.host,
            threads=self.options.threads,
            stack=self.options.stack,
            profile=self.options.profile,
        )

    def _outputs(self) -> tuple[tuple[Path | None, OutputFile], ...]:
        options = self.options
        return ((options.npd, NPD_FILE), (options.nfd, NFD_FILE), (options.prometheus, TEXTFILE))

    def _report(self, result: CheckResult, line: str, status: int) -> None:
        """Rewrite every report asked for; one that fails is logged, the others written."""
        texts = (f"{status} {line}\n", nfd_text(result), check_text(result))
        for (path, output), text in zip(self._outputs(), texts, strict=True):
            if path is not None:
                self._write(output, path, text)

    def _write(self, output: OutputFile, path: Path, text: str) -> None:
        try:
            output.write(path, text)
        except (SysprepError, OSError) as error:
            self.log(f"report {path}: {error}")

    def _write_npd(self, status: int, line: str) -> None:
        if self.options.npd is not None:
            self._write(NPD_FILE, self.options.npd, f"{status} {line}\n")

    def _apply_once(self, name: str) -> None:
        """Apply the profile unless these very bytes were applied (or refused) before.

        A lock held by a revert is tried again next cycle; any other outcome is recorded,
        so that a refused profile is not tried again each cycle, only once it changes.
        """
        from sysprep.apply import apply
        from sysprep.profile import find
        from sysprep.profile import load

        if self.stopped_by is not None:
            return
        try:
            digest = hashlib.sha256(find(name, self.host).read_bytes()).hexdigest()
        except (SysprepError, OSError) as error:
            self.log(f"apply {name}: {error}")
            return
        if self._recorded().get("digest") == digest:
            return
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # apply rolls back on them
        try:
            result = apply(
                self.host,
                load(name, self.host, trust=False),  # as apply: it runs as root
                self.state_dir,
                persist=self.options.persist,
                run_probes=self.options.probes,
            )
        except ConflictError as error:
            self.log(f"apply {name}: {error}; trying again next cycle")
            return
        except StoppedError as error:
            self.log(f"apply {name}: {error}")
            self.stopped_by = self.stopped_by or signal.SIGTERM
            return
        except SysprepError as error:
            outcome = f"failed: {' '.join(str(error).splitlines())}"
        else:
            made = ", ".join(change.setting.key for change in result.plan.to_make)
            snapshot = result.snapshot.id if result.snapshot else None
            outcome = f"applied {made}; snapshot {snapshot}" if made else "nothing to change"
        finally:
            signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        self.log(f"apply {name}: {outcome}")
        self._record({"profile": name, "digest": digest, "outcome": outcome, "at": time.time()})

    def _recorded(self) -> dict[str, object]:
        try:
            record = json.loads((self.state_dir / RECORD).read_text())
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def _record(self, record: dict[str, object]) -> None:
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(self.state_dir / RECORD, json.dumps(record).encode(), mode=0o600)

    def _note(self, signum: int, _frame: FrameType | None) -> None:
        """A stop signal that arrived while unblocked (around an apply): end after the cycle."""
        self.stopped_by = signal.Signals(signum)
