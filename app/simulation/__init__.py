"""The main run (`python -m workers.cli run`): a simulated trading engine replaying candles as live
through the whole system. `app.simulation.run.run_simulation(RunConfig(...))` is the entry point."""
