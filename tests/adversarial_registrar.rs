//! Registrar jobs, submitters (issue 12, items 2, 7): each attack against a spawned daemon, asserting its bounded outcome.
