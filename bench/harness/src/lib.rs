//! archlab-harness
