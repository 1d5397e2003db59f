"""Wire modules: each turns HTTP requests into state changes for one Salesforce API.

Every module named here exposes `register(app: web.Application, state: EmulatorState)`;
`emulator.app` calls them in this order; a new API's module is added to the list.
"""

WIRE_MODULES: list[str] = [
    "admin",
    "faults",
    "oauth",
    "soap",
    "identity",
    "bulk_query",
    "bulk_ingest",
    "bulk_v1",
    "rest",
    "composite",
]
