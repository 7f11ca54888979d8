"""Conversion cache: one directory per (source fingerprint, step, conversion params, library versions).

Entries are built in a temporary directory and renamed into place, so a crash never leaves a
half-written entry that a later trial would trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

from navigator.env import versions
from navigator.errors import TrialError, one_line


class Cache:
    def __init__(self, root: Path, fingerprint: str) -> None:
        self.root = root
        self.fingerprint = fingerprint
        self.hits = 0
        self.misses = 0
        self._versions = versions()

    def key(self, step: str, params: Mapping[str, Any]) -> str:
        blob = json.dumps({"source": self.fingerprint, "step": step, "params": params,
                           "versions": self._versions}, sort_keys=True)
        return f"{step}-{hashlib.sha256(blob.encode()).hexdigest()[:20]}"

    def get(self, step: str, params: Mapping[str, Any], build: Callable[[Path], None]) -> Path:
        """The entry's directory; `build(tmpdir)` fills it on a miss.

        A build that raised is remembered (`<key>.failed` holds the reason), so the same conversion
        is not attempted again for this source and these library versions: it raises TrialError.
        """
        final = self.root / self.key(step, params)
        failed = final.with_name(final.name + ".failed")
        if final.is_dir():
            self.hits += 1
            return final
        if failed.is_file():
            self.hits += 1
            raise TrialError(f"{step} failed before: {failed.read_text().strip()}")
        self.misses += 1
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=self.root))
        os.chmod(tmp, 0o755)
        try:
            try:
                build(tmp)
            except Exception as exc:  # any converter failure: remember it, then let the trial record it
                failed.write_text(one_line(exc) + "\n")
                raise
            (tmp / "params.json").write_text(json.dumps({"step": step, "params": params}, sort_keys=True))
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():  # not a lost race with another worker building the same entry
                raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return final
