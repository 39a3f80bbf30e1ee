//! DNS and Handle UDP amplification (issue 12, item 8): each attack against a spawned daemon, asserting its bounded outcome.
