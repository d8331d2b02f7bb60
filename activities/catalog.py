"""Catalog sync: publish the playbook library to the catalog (`core_entities`, playbook_definition).

A bad file never stops a worker (SPEC §8): each problem is logged in one line with its file and line, the
file is skipped, the count goes to a metric, and every valid playbook is served. Templates are never
published. A definition already in the history is left alone, so a restart keeps rollbacks and statuses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.common import MetricMeter

from model import Problem, load_library
from store import Store

log = logging.getLogger("playbook.catalog")
SKIPPED_FILES_METRIC = "playbook_catalog_skipped_files"


@dataclass
class SyncReport:
    published: int = 0
    skipped: list[Problem] = field(default_factory=list)
    """One problem per file left out (the first of each file's problems)."""


async def sync_catalog(store: Store, playbooks_dir: Path, meter: MetricMeter | None = None) -> SyncReport:
    """Publish every valid library playbook as a platform definition; report and skip the invalid files."""
    library = load_library([playbooks_dir])
    report = SyncReport()
    by_file: dict[str | None, list[Problem]] = {}
    for problem in library.problems:
        by_file.setdefault(problem.file, []).append(problem)
    for file, problems in by_file.items():
        more = f" (and {len(problems) - 1} more: playbook validate {file})" if len(problems) > 1 else ""
        log.error("catalog: skipped %s%s", problems[0], more)
    report.skipped = [problems[0] for problems in by_file.values()]
    if meter is not None:
        meter.create_gauge(SKIPPED_FILES_METRIC, "Playbook files left out of the catalog at start-up: invalid.").set(
            len(report.skipped)
        )
    for playbook in library.playbooks.values():
        await store.publish_definition(
            None,
            playbook_id=playbook.id,
            definition=playbook.model_dump(mode="json", by_alias=True, exclude_none=True),
            smart_code=playbook.smart_code,
            by="library sync",
            only_if_new=True,
        )
        report.published += 1
    log.info("catalog: %d playbooks published from %s, %d file(s) skipped", report.published, playbooks_dir,
             len(report.skipped))
    return report
