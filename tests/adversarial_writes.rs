//! Rollback by replay and alias consent (issue 12, items 11, 12): each attack against a spawned daemon, asserting its bounded outcome.
