"""The command line (the top layer): `commands` (Commands: the run, sweep and tool commands, inheriting the report
commands of `report` and the cluster commands of `cluster`), `argv` (every flag checked against its command's
typed signature before anything runs) and `help` (help written from signatures and docstrings)."""
