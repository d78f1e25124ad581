"""The built-in sandbox PSA: a complete in-process PSA with generated demo data (kind "sandbox").

connector.py  SandboxConnector (the PsaConnector)    server.py  shared state, faults, transactions
store.py      its own SQLite file (any number of processes; a legacy JSON state is imported once)
rules.py      the PSA's queries and business rules   seed.py    deterministic demo data
mapping.py    records -> canonical models            webhooks.py  signed pushes
demo.py       "things people do inside the PSA" for demos and scenario tests
"""
