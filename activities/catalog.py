"""Catalog sync: publish the playbook library to the catalog (`core_entities`, playbook_definition)."""

from __future__ import annotations

import logging
from pathlib import Path

from model import PlaybookError, load_library
from store import Store

log = logging.getLogger("playbook.catalog")


async def sync_catalog(store: Store, playbooks_dir: Path) -> int:
    """Publish every valid library playbook as a platform definition; refuse the sync if any is invalid."""
    library = load_library([playbooks_dir])
    if library.problems:
        raise PlaybookError(library.problems)
    for playbook in library.playbooks.values():
        await store.publish_definition(
            None,
            playbook_id=playbook.id,
            definition=playbook.model_dump(mode="json", by_alias=True, exclude_none=True),
            smart_code=playbook.smart_code,
        )
    log.info("catalog: %d playbooks published from %s", len(library.playbooks), playbooks_dir)
    return len(library.playbooks)
