"""Infrastructure: settings, clock, storage, artifacts, events, policy, migrations, the dispatch interface."""
