"""Pure logic: no model or engine is built, no training step taken, no server talked to, no run started (`make
test-unit`, well under a minute)."""
