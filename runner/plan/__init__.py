"""What to run: a run as a launcher sees it (`spec`: RunSpec), the one planner (`planner`: experiments x grid
points x seeds -> PlannedRuns) and the record of what sweeps asked a store for (`sweep_record`: sweep.json)."""
