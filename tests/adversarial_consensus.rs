//! Block limits, authenticated consensus and peers (issue 12, items 3, 9, 16): each attack against a spawned daemon, asserting its bounded outcome.
