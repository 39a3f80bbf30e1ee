//! Input-size and malformed-input attacks (issue 12, items 1, 13, 14): each attack against a spawned daemon, asserting its bounded outcome.
