"""Search attributes operators filter executions by, in the Web UI and with `temporal workflow list`."""

from temporalio.common import SearchAttributeKey

PLAYBOOK_ID = SearchAttributeKey.for_keyword("PlaybookId")
PLAYBOOK_MODULE = SearchAttributeKey.for_keyword("PlaybookModule")
ORGANIZATION_ID = SearchAttributeKey.for_keyword("OrganizationId")
PLAYBOOK_STATUS = SearchAttributeKey.for_keyword("PlaybookStatus")
WAITING_FOR = SearchAttributeKey.for_keyword_list("WaitingFor")

ALL = (PLAYBOOK_ID, PLAYBOOK_MODULE, ORGANIZATION_ID, PLAYBOOK_STATUS, WAITING_FOR)
CLI_FLAGS = [f"{key.name}={'KeywordList' if key is WAITING_FOR else 'Keyword'}" for key in ALL]
"""`--search-attribute` values for `temporal server start-dev`."""
